//! A replacement instance must not start while its predecessor's state is
//! still alive: ractor hands a stopped child's final state to the supervisor
//! inside the exit event, and a state that owns a resource (a bound port, a
//! lock) would make the new instance's `pre_start` fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use warden_supervisors::{ChildSpec, Strategy, Supervisor, SupervisorMsg, SupervisorSpec};

/// Held in the actor's state; marks the resource as taken until dropped.
struct Resource(Arc<AtomicBool>);

impl Drop for Resource {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

struct Exclusive;

impl Actor for Exclusive {
    type Msg = ();
    type State = Resource;
    type Arguments = (Arc<AtomicBool>, Arc<AtomicU32>, Arc<AtomicU32>);

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        (taken, starts, refused): Self::Arguments,
    ) -> Result<Resource, ActorProcessingErr> {
        if taken.swap(true, Ordering::SeqCst) {
            refused.fetch_add(1, Ordering::SeqCst);
            return Err("the previous instance still holds the resource".into());
        }
        starts.fetch_add(1, Ordering::SeqCst);
        Ok(Resource(taken))
    }
}

#[tokio::test]
async fn a_killed_or_stopped_childs_state_is_released_before_its_replacement_starts() {
    let taken = Arc::new(AtomicBool::new(false));
    let starts = Arc::new(AtomicU32::new(0));
    let refused = Arc::new(AtomicU32::new(0));
    let args = (taken.clone(), starts.clone(), refused.clone());
    let child = ChildSpec::worker("exclusive", move |sup| {
        let args = args.clone();
        Box::pin(async move {
            let (actor, _) = Actor::spawn_linked(None, Exclusive, args, sup).await?;
            Ok(actor.get_cell())
        })
    });
    let spec = SupervisorSpec::new("root", Strategy::OneForOne).children(vec![child]);
    let (sup, handle) = Supervisor::spawn(None, spec).await.unwrap();

    for round in 1..=2u32 {
        let children = ractor::call!(sup, SupervisorMsg::WhichChildren).unwrap();
        let cell = children[0].cell.clone().expect("the child is running");
        if round == 1 {
            cell.kill();
        } else {
            cell.stop(Some("crash".to_owned()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while starts.load(Ordering::SeqCst) < round + 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no replacement started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "a replacement started while its predecessor's state was alive"
    );
    warden_supervisors::shutdown(&sup, Duration::from_secs(5))
        .await
        .unwrap();
    handle.await.unwrap();
}
