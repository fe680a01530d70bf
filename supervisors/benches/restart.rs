//! Actor restart latency: a child fails (its handler returns an error, as a
//! panic does), the supervisor restarts it, and the replacement answers a
//! message. Measured from sending the failing message to the replacement's
//! reply, with a ladder whose every restart is the immediate first rung.
//!
//! `cargo bench -p warden-supervisors --bench restart` (optionally `-- <restarts>`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;
use warden_supervisors::{Backoff, ChildSpec, Ladder, Rung, Strategy, Supervisor, SupervisorSpec};

enum Msg {
    Ping(RpcReplyPort<()>),
    Fail,
}

struct Worker;

impl Actor for Worker {
    type Msg = Msg;
    type State = ();
    type Arguments = mpsc::UnboundedSender<ActorRef<Msg>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Msg>,
        started: Self::Arguments,
    ) -> Result<(), ActorProcessingErr> {
        let _ = started.send(myself);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        message: Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            Msg::Ping(reply) => {
                let _ = reply.send(());
                Ok(())
            }
            Msg::Fail => Err("injected failure".into()),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let restarts: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let child = ChildSpec::worker("worker", move |sup| {
            let tx = tx.clone();
            Box::pin(async move {
                let (actor, _) = Actor::spawn_linked(None, Worker, tx, sup).await?;
                Ok(actor.get_cell())
            })
        });
        // Every restart is "the first after a stable period": immediate, no backoff.
        let backoff = Backoff {
            min: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        };
        let policy = Ladder::new(vec![
            Rung::new("restart", u32::MAX, Duration::from_secs(1)).backoff(backoff),
        ]);
        let spec = SupervisorSpec::new("bench", Strategy::OneForOne)
            .policy(policy)
            .children(vec![child]);
        let (supervisor, handle) = Supervisor::spawn(None, spec).await.unwrap();
        let mut current: ActorRef<Msg> = rx.recv().await.unwrap();
        let mut micros = Vec::with_capacity(restarts);
        for _ in 0..restarts {
            let started = tokio::time::Instant::now();
            current.cast(Msg::Fail).unwrap();
            current = rx.recv().await.unwrap();
            ractor::call!(current, Msg::Ping).unwrap();
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
        micros.sort_by(f64::total_cmp);
        println!("| restarts | p50 | p99 | max |");
        println!("|---|---|---|---|");
        println!(
            "| {restarts} | {:.1} µs | {:.1} µs | {:.1} µs |",
            percentile(&micros, 0.5),
            percentile(&micros, 0.99),
            micros[micros.len() - 1]
        );
        supervisor.stop(None);
        let _ = handle.await;
    });
}
