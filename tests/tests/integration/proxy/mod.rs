//! The metering proxy in front of an AI upstream (a local stand-in, the OpenAI SDK, CopilotKit's runtime).

mod copilotkit;
mod deny;
mod fair;
mod metering;
mod sdk;
mod spend;
