//! The sandbox: a stateful simulator of Coolify, Cloudflare and Uptime Kuma.
