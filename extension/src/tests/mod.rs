//! pg_tests
