//! The task runtime, replaceable. A task that blocks its OS thread takes a
//! worker thread with it for good; when the controller gives up on such a
//! task it moves new tasks to a fresh runtime, so the run keeps all its
//! slots. An old runtime is never dropped (dropping waits for its blocked
//! threads); the process exit ends it.

use anyhow::{Context, Result};
use tokio::runtime::{Handle, Runtime};

pub struct Workers {
    runtime: Option<Runtime>,
    threads: usize,
    /// Runtimes given up because a task blocked one of their threads.
    pub replaced: u32,
}

fn build(threads: usize) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("task")
        .enable_all()
        .build()
        .context("starting the task runtime")
}

impl Workers {
    /// A runtime for `concurrency` tasks at once (one spare thread for the
    /// pool's connection drivers).
    pub fn new(concurrency: usize) -> Result<Self> {
        let threads = concurrency.clamp(1, 256) + 1;
        Ok(Self {
            runtime: Some(build(threads)?),
            threads,
            replaced: 0,
        })
    }

    /// Where new tasks go.
    pub fn handle(&self) -> Option<Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Starts a fresh runtime for new tasks and leaves the current one to
    /// whatever blocks it. On failure the current one stays in use.
    pub fn replace(&mut self) -> Result<()> {
        let fresh = build(self.threads)?;
        if let Some(old) = self.runtime.replace(fresh) {
            std::mem::forget(old);
        }
        self.replaced += 1;
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Dropping a runtime joins its threads: a blocked one never returns.
        if let Some(runtime) = self.runtime.take() {
            std::mem::forget(runtime);
        }
    }
}
