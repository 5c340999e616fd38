//! TLS between the API and PostgreSQL: the private cluster gets a certificate signed by a throwaway CA
//! (made here with the `openssl` CLI, for `localhost` only) and `ssl = on`; the API then connects with each
//! `sslmode` and the connection is TLS exactly when it should be, and refused when the certificate does not
//! pass the check the mode asks for.

use std::{path::PathBuf, process::Command};

use aiquota_tests::http::*;

/// Runs `openssl` with `args` in `dir`, panicking with its output on failure.
fn openssl(dir: &PathBuf, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.crt`, `<name>.key`) in `dir`.
fn ca(dir: &PathBuf, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// Makes the certificates, installs the server's into the cluster's data directory and turns TLS on;
/// returns the directory holding the two CA certificates.
async fn enable_tls(db: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aiquota-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    ca(&dir, "test-ca");
    ca(&dir, "other-ca");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "test-ca.crt",
            "-CAkey",
            "test-ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let su = sql(db).await;
    let data: String = su
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    // Inside the data directory, owned by its owner, 0600: what PostgreSQL demands of a key, and it stays
    // valid for later restarts of the cluster.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    for f in ["server.crt", "server.key"] {
        let to = PathBuf::from(&data).join(format!("aiquota-test-{f}"));
        std::fs::copy(dir.join(f), &to).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&to, Some(owner), None).unwrap();
    }
    // One statement at a time: ALTER SYSTEM cannot run in the implicit transaction of a batch.
    for stmt in [
        "ALTER SYSTEM SET ssl_cert_file = 'aiquota-test-server.crt'",
        "ALTER SYSTEM SET ssl_key_file = 'aiquota-test-server.key'",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    ] {
        su.batch_execute(stmt).await.unwrap();
    }
    // The reload is asynchronous: wait until a new session sees it.
    for _ in 0..50 {
        let on: String = sql(db)
            .await
            .query_one("SHOW ssl", &[])
            .await
            .unwrap()
            .get(0);
        if on == "on" {
            return dir;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("ssl did not turn on (see the cluster's log)");
}

/// The API's connection string to `db` through `host` with the TLS options `tls`.
fn api_dsn(db: &str, host: &str, tls: &str) -> String {
    let port = std::env::var("AIQUOTA_PGPORT").unwrap_or_else(|_| "55432".into());
    format!("host={host} port={port} user=aiquota_api dbname={db} {tls}")
}

/// Starts the API on `dsn` and returns the status of `GET /v1/quota` and whether the API's sessions
/// in `db` use TLS.
async fn try_dsn(db: &str, dsn: String) -> (u16, bool) {
    let mut config = test_config(db);
    config.database_url = aiquota_api::config::Secret::new(dsn);
    let app = TestApp::start_on(db.to_string(), config).await;
    let status = app.quota(&user_token("tess")).await.status().as_u16();
    let ssl: bool = sql(db)
        .await
        .query_one(
            "SELECT coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.usename = 'aiquota_api' AND a.datname = $1 AND a.application_name = 'aiquota-api'",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    app.stop().await;
    (status, ssl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sslmode_is_honoured_with_rustls() {
    let db = fresh_db("http_db_tls").await;
    let certs = enable_tls(&db).await;
    let ca = certs.join("test-ca.crt");
    let other = certs.join("other-ca.crt");
    let (ca, other) = (ca.display(), other.display());
    for (host, tls, want_status, want_ssl) in [
        // Encryption only, as in libpq: any certificate.
        ("127.0.0.1", "sslmode=require".to_string(), 200, true),
        ("127.0.0.1", "sslmode=prefer".to_string(), 200, true),
        // The chain is checked; the name is not.
        (
            "127.0.0.1",
            format!("sslmode=verify-ca sslrootcert={ca}"),
            200,
            true,
        ),
        (
            "localhost",
            format!("sslmode=verify-full sslrootcert={ca}"),
            200,
            true,
        ),
        ("127.0.0.1", "sslmode=disable".to_string(), 200, false),
        // Refused: the certificate names localhost, not 127.0.0.1; or another CA signed it.
        (
            "127.0.0.1",
            format!("sslmode=verify-full sslrootcert={ca}"),
            503,
            false,
        ),
        (
            "localhost",
            format!("sslmode=verify-ca sslrootcert={other}"),
            503,
            false,
        ),
        (
            "localhost",
            format!("sslmode=require sslrootcert={other}"),
            503,
            false,
        ),
    ] {
        let got = try_dsn(&db, api_dsn(&db, host, &tls)).await;
        assert_eq!(got, (want_status, want_ssl), "host={host} {tls}");
    }
    // The URL form takes the same options.
    let port = std::env::var("AIQUOTA_PGPORT").unwrap_or_else(|_| "55432".into());
    let url = format!(
        "postgres://aiquota_api@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={ca}"
    );
    assert_eq!(try_dsn(&db, url).await, (200, true));
    // A connection of its own (what the LISTEN connection of the event stream needs) with the same
    // options: TLS, checked, and notifications arrive.
    let (client, mut messages) = aiquota_api::tls::connect(&api_dsn(
        &db,
        "localhost",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    ))
    .await
    .unwrap();
    let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = ntx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute("LISTEN aiquota_tls_test; NOTIFY aiquota_tls_test, 'over tls'")
        .await
        .unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), nrx.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("over tls"));
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    assert!(aiquota_api::tls::connect(&api_dsn(
        &db,
        "127.0.0.1",
        &format!("sslmode=verify-full sslrootcert={ca}")
    ))
    .await
    .is_err());
    let _ = std::fs::remove_dir_all(&certs);
}
