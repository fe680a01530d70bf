//! The simulated world a scenario watches: HTTP targets whose health the
//! harness switches (so it knows the ground truth), a webhook receiver that
//! counts notices by idempotency key and can fail on demand, an investigator
//! webhook and an escalation tier webhook that can fail the same ways, and a
//! fix endpoint that records every remediation call. One loopback listener, a
//! small HTTP/1.1 server written against raw sockets because a connection
//! reset is one of the faults and an HTTP framework cannot produce one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long a hanging target or receiver holds a request before giving up
/// on its own (the client's timeout normally ends it much sooner).
const HANG_LIMIT: Duration = Duration::from_secs(30);
/// Largest request the world reads (headers plus body).
const MAX_REQUEST: usize = 256 * 1024;

/// How a target answers its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetMode {
    /// 200 "ok".
    Ok,
    /// 503.
    Down,
    /// Reads the request and never answers.
    Hang,
    /// 200 with a body that is not UTF-8 (the probe reports it unhealthy).
    Garbage,
    /// Alternates 200 and 503, one request each.
    Flap,
}

impl TargetMode {
    /// Whether every answer in this mode is unhealthy.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            TargetMode::Down | TargetMode::Hang | TargetMode::Garbage
        )
    }
}

/// How the webhook receiver answers a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookMode {
    /// 200, and the notice counts as received.
    Ok,
    /// 500.
    Error,
    /// Never answers.
    Hang,
    /// Resets the connection without answering.
    Reset,
}

/// One stretch of time a target spent in one mode.
#[derive(Debug, Clone)]
pub struct Episode {
    /// The mode.
    pub mode: TargetMode,
    /// When it began.
    pub start: SystemTime,
    /// When it ended (the end of the run for the last one).
    pub end: SystemTime,
}

#[derive(Debug)]
struct Target {
    mode: TargetMode,
    since: SystemTime,
    generation: u64,
    flip: bool,
    episodes: Vec<Episode>,
}

#[derive(Debug)]
struct Hook {
    mode: HookMode,
    generation: u64,
}

#[derive(Debug)]
struct Shared {
    targets: Vec<Mutex<Target>>,
    hook: Mutex<Hook>,
    investigator: Mutex<Hook>,
    investigations: Mutex<usize>,
    tier: Mutex<Hook>,
    tier_calls: Mutex<Vec<SystemTime>>,
    received: Mutex<BTreeMap<String, usize>>,
    fixes: Mutex<Vec<SystemTime>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running world. Dropping it stops its server and timers.
#[derive(Debug)]
pub struct World {
    addr: SocketAddr,
    down: usize,
    shared: Arc<Shared>,
    tasks: Mutex<JoinSet<()>>,
}

impl World {
    /// Starts `targets` targets (the first `down` of them answering 503, the
    /// rest healthy) and a receiver answering 200.
    pub async fn start(targets: usize, down: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let now = SystemTime::now();
        let shared = Arc::new(Shared {
            targets: (0..targets)
                .map(|_| {
                    Mutex::new(Target {
                        mode: TargetMode::Ok,
                        since: now,
                        generation: 0,
                        flip: false,
                        episodes: Vec::new(),
                    })
                })
                .collect(),
            hook: Mutex::new(Hook {
                mode: HookMode::Ok,
                generation: 0,
            }),
            investigator: Mutex::new(Hook {
                mode: HookMode::Ok,
                generation: 0,
            }),
            investigations: Mutex::default(),
            tier: Mutex::new(Hook {
                mode: HookMode::Ok,
                generation: 0,
            }),
            tier_calls: Mutex::default(),
            received: Mutex::default(),
            fixes: Mutex::default(),
        });
        let mut tasks = JoinSet::new();
        let server = shared.clone();
        tasks.spawn(async move {
            // Each connection is its own task in this set, so dropping the
            // world drops them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        connections.spawn(serve(socket, server.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        for target in shared.targets.iter().take(down) {
            switch(target, TargetMode::Down);
        }
        Ok(Self {
            addr,
            down,
            shared,
            tasks: Mutex::new(tasks),
        })
    }

    /// `http://addr`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of targets.
    pub fn targets(&self) -> usize {
        self.shared.targets.len()
    }

    /// Targets faults may pick: those not held down from the start (they
    /// stay down until [`World::heal`]), or all when every one is.
    pub fn faultable(&self) -> std::ops::Range<usize> {
        if self.down < self.targets() {
            self.down..self.targets()
        } else {
            0..self.targets()
        }
    }

    /// Puts target `index` in `mode` for `duration`, then back to `Ok`
    /// (unless another fault changed it meanwhile).
    pub fn set_target(&self, index: usize, mode: TargetMode, duration: Duration) {
        let Some(target) = self.shared.targets.get(index) else {
            return;
        };
        let generation = switch(target, mode);
        let shared = self.shared.clone();
        lock(&self.tasks).spawn(async move {
            tokio::time::sleep(duration).await;
            if let Some(target) = shared.targets.get(index)
                && lock(target).generation == generation
            {
                switch(target, TargetMode::Ok);
            }
        });
    }

    /// Makes `webhook` answer in `mode` for `duration`, then `Ok` again
    /// (unless another fault changed it meanwhile).
    pub fn set_webhook(&self, webhook: Webhook, mode: HookMode, duration: Duration) {
        self.switch_hook(webhook, mode, duration);
    }

    fn switch_hook(&self, which: Webhook, mode: HookMode, duration: Duration) {
        let generation = {
            let mut hook = lock(self.shared.hook_of(which));
            hook.mode = mode;
            hook.generation += 1;
            hook.generation
        };
        let shared = self.shared.clone();
        lock(&self.tasks).spawn(async move {
            tokio::time::sleep(duration).await;
            let mut hook = lock(shared.hook_of(which));
            if hook.generation == generation {
                hook.mode = HookMode::Ok;
            }
        });
    }

    /// Ends every fault now: targets healthy, receiver answering.
    pub fn heal(&self) {
        for target in &self.shared.targets {
            if lock(target).mode != TargetMode::Ok {
                switch(target, TargetMode::Ok);
            }
        }
        for which in [Webhook::Notifier, Webhook::Investigator, Webhook::Tier] {
            let mut hook = lock(self.shared.hook_of(which));
            hook.mode = HookMode::Ok;
            hook.generation += 1;
        }
    }

    /// When each call to the escalation tier arrived (answered or not).
    pub fn tier_calls(&self) -> Vec<SystemTime> {
        lock(&self.shared.tier_calls).clone()
    }

    /// Investigations the investigator answered.
    pub fn investigations(&self) -> usize {
        *lock(&self.shared.investigations)
    }

    /// Every finished episode of target `index`, oldest first.
    pub fn episodes(&self, index: usize) -> Vec<Episode> {
        self.shared
            .targets
            .get(index)
            .map(|target| lock(target).episodes.clone())
            .unwrap_or_default()
    }

    /// Notices the receiver accepted (answered 200), by idempotency key.
    pub fn received(&self) -> BTreeMap<String, usize> {
        lock(&self.shared.received).clone()
    }

    /// When each fix call arrived.
    pub fn fixes(&self) -> Vec<SystemTime> {
        lock(&self.shared.fixes).clone()
    }
}

/// The world's webhooks that faults can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    /// The `chaos` notifier's receiver.
    Notifier,
    /// The investigator.
    Investigator,
    /// The `world` component's escalation tier.
    Tier,
}

impl Shared {
    fn hook_of(&self, which: Webhook) -> &Mutex<Hook> {
        match which {
            Webhook::Notifier => &self.hook,
            Webhook::Investigator => &self.investigator,
            Webhook::Tier => &self.tier,
        }
    }
}

fn switch(target: &Mutex<Target>, mode: TargetMode) -> u64 {
    let now = SystemTime::now();
    let mut target = lock(target);
    let episode = Episode {
        mode: target.mode,
        start: target.since,
        end: now,
    };
    target.episodes.push(episode);
    target.mode = mode;
    target.since = now;
    target.generation += 1;
    target.generation
}

/// One parsed request.
struct Request {
    method: String,
    path: String,
    key: Option<String>,
}

/// Reads one request off `socket` (keeping any bytes of the next one in `buf`).
async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = parsed.parse(buf) {
            let length = parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            let key = parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("idempotency-key"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::to_owned);
            let request = Request {
                method: parsed.method.unwrap_or_default().to_owned(),
                path: parsed.path.unwrap_or_default().to_owned(),
                key,
            };
            if head + length > MAX_REQUEST {
                return None;
            }
            while buf.len() < head + length {
                if !read_more(socket, buf).await {
                    return None;
                }
            }
            buf.drain(..head + length);
            return Some(request);
        }
        if buf.len() > MAX_REQUEST || !read_more(socket, buf).await {
            return None;
        }
    }
}

async fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match socket.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

enum Answer {
    Reply(u16, &'static [u8]),
    Hang,
    Reset,
}

/// How `which` answers now; `ok` counts the call and gives the body, and
/// runs only when it answers 200.
fn webhook(shared: &Shared, which: Webhook, ok: impl FnOnce() -> &'static [u8]) -> Answer {
    let mode = lock(shared.hook_of(which)).mode;
    match mode {
        HookMode::Ok => Answer::Reply(200, ok()),
        HookMode::Error => Answer::Reply(500, b"{\"error\":\"chaos\"}"),
        HookMode::Hang => Answer::Hang,
        HookMode::Reset => Answer::Reset,
    }
}

fn answer(shared: &Shared, request: &Request) -> Answer {
    if request.method == "POST" {
        match request.path.as_str() {
            "/hook" => {
                return webhook(shared, Webhook::Notifier, || {
                    if let Some(key) = &request.key {
                        *lock(&shared.received).entry(key.clone()).or_default() += 1;
                    }
                    b"{}"
                });
            }
            "/investigate" => {
                return webhook(shared, Webhook::Investigator, || {
                    *lock(&shared.investigations) += 1;
                    b"{\"summary\":\"the chaos world looked into it\",\"actions\":[\"wait\"]}"
                });
            }
            "/tier" => {
                lock(&shared.tier_calls).push(SystemTime::now());
                return webhook(shared, Webhook::Tier, || {
                    b"{\"status\":\"in_progress\",\"notes\":\"on it\"}"
                });
            }
            "/fix" => {
                lock(&shared.fixes).push(SystemTime::now());
                return Answer::Reply(200, b"{}");
            }
            _ => {}
        }
    }
    let index = request
        .path
        .strip_prefix("/t/")
        .and_then(|i| i.parse::<usize>().ok());
    let Some(target) = index.and_then(|i| shared.targets.get(i)) else {
        return Answer::Reply(404, b"no such target");
    };
    let mut target = lock(target);
    match target.mode {
        TargetMode::Ok => Answer::Reply(200, b"ok"),
        TargetMode::Down => Answer::Reply(503, b"down"),
        TargetMode::Hang => Answer::Hang,
        TargetMode::Garbage => Answer::Reply(200, &[0xff, 0xfe, 0xfd, b'o', b'k', 0xc3, 0x28]),
        TargetMode::Flap => {
            target.flip = !target.flip;
            if target.flip {
                Answer::Reply(200, b"ok")
            } else {
                Answer::Reply(503, b"down")
            }
        }
    }
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    // One iteration per request on a keep-alive connection.
    while let Some(request) = read_request(&mut socket, &mut buf).await {
        match answer(&shared, &request) {
            Answer::Reply(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n",
                    reason(status),
                    body.len()
                );
                if socket.write_all(head.as_bytes()).await.is_err()
                    || socket.write_all(body).await.is_err()
                {
                    return;
                }
            }
            Answer::Hang => {
                // Hold until the client gives up (EOF) or the limit passes.
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(HANG_LIMIT, async {
                    while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
                return;
            }
            Answer::Reset => {
                // SO_LINGER 0 makes the close an RST instead of a FIN.
                let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    }
}
