//! Test doubles shared by the integration tests: a scriptable worker, a
//! recording observer, flaky start functions and an `eventually` helper.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr};
use tokio::time::Instant;
use warden_supervisors::{ChildInfo, ChildSpec, Observer, SupervisionEvent, SupervisorMsg};

/// Shared ordered log of `start:<id>` / `stop:<id>` lines (stop = `post_stop`).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<(String, Instant)>>>);

impl Log {
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push((line, Instant::now()));
    }
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(line, _)| line.clone())
            .collect()
    }
    pub fn timed(&self) -> Vec<(String, Instant)> {
        self.0.lock().unwrap().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

pub enum WorkerMsg {
    /// Return `Err` from the handler.
    Fail,
    /// Panic in the handler.
    Panic,
    /// Never finish handling (ignores a graceful stop; only a kill ends it).
    Hang,
}

pub struct Worker;

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = (String, Log);
    type Arguments = (String, Log);

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        (id, log): (String, Log),
    ) -> Result<Self::State, ActorProcessingErr> {
        log.push(format!("start:{id}"));
        Ok((id, log))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WorkerMsg>,
        (id, log): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        log.push(format!("stop:{id}"));
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        message: WorkerMsg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WorkerMsg::Fail => Err("worker failed on purpose".into()),
            WorkerMsg::Panic => panic!("worker panicked on purpose"),
            WorkerMsg::Hang => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

/// A permanent worker child logging to `log`.
pub fn worker(id: &str, log: &Log) -> ChildSpec {
    let (id_owned, log) = (id.to_string(), log.clone());
    ChildSpec::worker(id, move |sup| {
        let args = (id_owned.clone(), log.clone());
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, Worker, args, sup).await?;
            Ok(actor.get_cell())
        })
    })
}

/// A worker whose start function fails while `failures` is above zero
/// (decrementing it), then starts normally.
pub fn flaky_worker(id: &str, log: &Log, failures: Arc<AtomicU32>) -> ChildSpec {
    let (id_owned, log) = (id.to_string(), log.clone());
    ChildSpec::worker(id, move |sup| {
        let args = (id_owned.clone(), log.clone());
        let failures = failures.clone();
        Box::pin(async move {
            let left = failures.load(Ordering::SeqCst);
            if left > 0 {
                failures.store(left - 1, Ordering::SeqCst);
                return Err(SpawnErr::StartupFailed("flaky start".into()));
            }
            let (actor, _) = Actor::spawn_linked(None, Worker, args, sup).await?;
            Ok(actor.get_cell())
        })
    })
}

/// Records every supervision event.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<SupervisionEvent>>>);

impl Observer for Recorder {
    fn observe(&self, event: &SupervisionEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<SupervisionEvent> {
        self.0.lock().unwrap().clone()
    }
    pub fn count(&self, pred: impl Fn(&SupervisionEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| pred(e)).count()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    pub fn arc(&self) -> Arc<dyn Observer> {
        Arc::new(self.clone())
    }
}

/// Polls `cond` every 5 ms until it holds; panics after `timeout`.
pub async fn eventually(mut cond: impl FnMut() -> bool, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets the tree settle so that anything that should *not* happen would have.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

pub async fn children(sup: &ActorRef<SupervisorMsg>) -> Vec<ChildInfo> {
    ractor::call!(sup, SupervisorMsg::WhichChildren).unwrap()
}

pub async fn child_cell(sup: &ActorRef<SupervisorMsg>, id: &str) -> ActorCell {
    children(sup)
        .await
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.cell)
        .unwrap_or_else(|| panic!("child {id} is not running"))
}

/// The ways a child can exit in the OTP matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Normal,
    Error,
    Panic,
    Kill,
}

pub const ALL_EXITS: [How; 4] = [How::Normal, How::Error, How::Panic, How::Kill];

pub fn make_exit(cell: &ActorCell, how: How) {
    match how {
        How::Normal => cell.stop(None),
        How::Error => cell.send_message(WorkerMsg::Fail).unwrap(),
        How::Panic => cell.send_message(WorkerMsg::Panic).unwrap(),
        How::Kill => cell.kill(),
    }
}

pub fn is_abnormal(how: How) -> bool {
    how != How::Normal
}
