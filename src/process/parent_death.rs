//! The parent-death guard: a child started through [`kill_with_parent`]
//! gets SIGKILL from the kernel the moment Warden dies, even by `kill -9`,
//! so a crash cannot leave a second copy of a managed process running.
//!
//! This is the one place in the workspace that allows `unsafe_code`
//! (the workspace lint is `deny`, not `forbid`, for this module only).
//! `PR_SET_PDEATHSIG` must be set by the child itself, between `fork` and
//! `exec`; std and tokio only offer that hook as the `unsafe fn pre_exec`.
//! There is no safe wrapper: a launcher that re-executes Warden to call
//! `prctl` itself would need its own binary in every test and doubles the
//! exec cost. The hook is audited below.
//!
//! `PR_SET_PDEATHSIG` fires when the parent *thread* ends, not the process.
//! Children are spawned from tokio worker threads, which live as long as
//! the runtime (Warden never calls `block_in_place`, which could retire
//! one), so in practice the signal comes when Warden's runtime or process
//! ends. The process-group records in [`crate::managed`] are the first
//! guard; this one covers the group leader between a crash and the
//! restart.

#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

/// Makes the child that `command` starts receive SIGKILL when its parent
/// dies. If the parent is already gone by the time the child runs the hook,
/// the spawn fails with ESRCH instead of starting an orphan.
pub(crate) fn kill_with_parent(command: &mut tokio::process::Command) {
    let parent: Pid = getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed. It makes two raw syscalls (prctl,
    // getppid) through nix, which neither allocates nor takes locks, and
    // builds its error from a raw errno (no allocation). It captures one
    // `Pid` (Copy), so no state shared with other threads is touched.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))?;
            // The parent may have died between fork and prctl; the signal
            // would then never come.
            if getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(Errno::ESRCH as i32));
            }
            Ok(())
        });
    }
}
