//! Payments: Razorpay payment links and Stripe webhooks against local servers that speak their APIs.

mod checkout;
mod revoke;
