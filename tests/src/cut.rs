//! A TCP forwarder between the API and PostgreSQL that a test can sever: [`Cut::sever`] closes every
//! connection through it at once, without PostgreSQL sending anything, the way a network failure or a
//! killed backend looks to the API (a socket that ends with no SQLSTATE). New connections pass again.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A running forwarder to one PostgreSQL port.
pub struct Cut {
    /// The local port to connect to instead of PostgreSQL's.
    pub port: u16,
    generation: Arc<watch::Sender<u64>>,
}

impl Cut {
    /// Forwards `127.0.0.1:<new port>` to `127.0.0.1:target_port`.
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the forwarder");
        let port = listener.local_addr().unwrap().port();
        let (tx, _) = watch::channel(0u64);
        let generation = Arc::new(tx);
        let gen = generation.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut severed = gen.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], target_port))).await
                    else {
                        return;
                    };
                    // Dropping both sockets closes them: the API sees its connection end mid-statement.
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = severed.changed() => {}
                    }
                });
            }
        });
        Self { port, generation }
    }

    /// Closes every connection that is open through the forwarder now.
    pub fn sever(&self) {
        self.generation.send_modify(|g| *g += 1);
    }
}

/// The port of the test cluster (`AIQUOTA_PGPORT`, default 55432).
pub fn pg_port() -> u16 {
    std::env::var("AIQUOTA_PGPORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(55432)
}
