//! Fair use of the pool: at most [`Fair::per_user`] requests of one user run database work at a time; the
//! rest queue for a turn until their own deadline. A user whose counter rows are locked (or who is simply
//! hot) can then hold only a few connections, and every other user still finds one.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Instant,
};

/// The per-user turns.
pub struct Fair {
    per_user: usize,
    users: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One turn of one user; dropping it frees the turn (and the user's entry once nobody holds or waits).
pub struct Turn {
    permit: Option<OwnedSemaphorePermit>,
    user: String,
    fair: Arc<Fair>,
}

/// No turn came before the deadline.
#[derive(Debug)]
pub struct Busy;

impl Fair {
    /// `per_user` turns for each user (at least 1).
    pub fn new(per_user: usize) -> Arc<Self> {
        Arc::new(Self {
            per_user: per_user.max(1),
            users: Mutex::new(HashMap::new()),
        })
    }

    /// How many requests of one user may run at once.
    pub fn per_user(&self) -> usize {
        self.per_user
    }

    /// Waits for a turn of `user` until `deadline`.
    pub async fn turn(self: &Arc<Self>, user: &str, deadline: Instant) -> Result<Turn, Busy> {
        let semaphore = {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            users
                .entry(user.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_user)))
                .clone()
        };
        // Built before waiting, so the entry is cleaned up even when the wait gives up.
        let mut turn = Turn {
            permit: None,
            user: user.to_string(),
            fair: self.clone(),
        };
        match tokio::time::timeout_at(deadline, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => {
                turn.permit = Some(permit);
                Ok(turn)
            }
            _ => Err(Busy),
        }
    }

    /// Users with requests holding or waiting for a turn (for tests and metrics).
    pub fn active_users(&self) -> usize {
        self.users.lock().map(|u| u.len()).unwrap_or(0)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut users = self.fair.users.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds the semaphore: nobody of this user is running or waiting.
        if users
            .get(&self.user)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            users.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[tokio::test]
    async fn a_user_gets_at_most_its_turns_and_others_are_not_held_up() {
        let fair = Fair::new(2);
        let a1 = fair.turn("a", soon(100)).await.unwrap();
        let _a2 = fair.turn("a", soon(100)).await.unwrap();
        assert!(
            fair.turn("a", soon(50)).await.is_err(),
            "a third turn waits"
        );
        let _b = fair.turn("b", soon(0)).await.expect("another user at once");
        let waiting = {
            let fair = fair.clone();
            tokio::spawn(async move { fair.turn("a", soon(2000)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a1);
        assert!(waiting.await.unwrap(), "a freed turn goes to the queue");
    }

    #[tokio::test]
    async fn users_are_forgotten_once_nobody_holds_or_waits() {
        let fair = Fair::new(1);
        let t = fair.turn("a", soon(100)).await.unwrap();
        assert!(fair.turn("a", soon(10)).await.is_err());
        assert_eq!(fair.active_users(), 1);
        drop(t);
        assert_eq!(fair.active_users(), 0);
    }
}
