//! Running the API: probes, metrics, OpenAPI, shutdown, TLS to PostgreSQL, and abuse that spends no quota.

mod abuse;
mod db_tls;
mod probes;
