// The real CopilotKit runtime (single-route endpoint at /api/copilotkit) with its OpenAI adapter pointed at
// OPENAI_BASE_URL, a counting OpenAI stand-in. Prints "listening <port>" once it accepts connections.
import http from "node:http";
import OpenAI from "openai";
import { CopilotRuntime, OpenAIAdapter, copilotRuntimeNodeHttpEndpoint } from "@copilotkit/runtime";

const openai = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: "sk-stand-in" });
const handler = copilotRuntimeNodeHttpEndpoint({
  endpoint: "/api/copilotkit",
  runtime: new CopilotRuntime(),
  serviceAdapter: new OpenAIAdapter({ openai, model: "gpt-4o-mini" }),
});
const server = http.createServer((req, res) => handler(req, res));
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
