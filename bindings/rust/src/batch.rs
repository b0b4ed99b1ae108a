//! Safe batch runner over `brg_batch_run`: an OpenAI Batch API input file
//! (JSONL) in, Batch API output lines (also the resume checkpoint) out, with
//! a progress closure and the run's token counts and cost.
use std::ffi::{c_void, CString};
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::Engine;
use crate::error::Error;
use crate::sys;

/// Counters of a batch run (`brg_batch_progress`), handed to the progress
/// closure about every 100 ms and returned at the end.
pub type Progress = sys::brg_batch_progress;

/// What the progress closure asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Start no new requests; in-flight ones finish and are written.
    Stop,
    /// Cancel in-flight ones at once (not written: a resume runs them again);
    /// the run returns `Error::Cancelled`.
    Abort,
}

/// A batch run's settings (`brg_batch_options`). Paths are required.
#[derive(Debug, Clone)]
pub struct Batch {
    input: PathBuf,
    output: PathBuf,
    flags: u32,
    endpoint: Option<String>,
    api_key_env: Option<String>,
    headers: Vec<(String, String)>,
    reorder_window: u32,
    prices: Option<PathBuf>,
    deadline: Option<Duration>,
    max_retries: Option<u32>,
    shard: Option<(u32, u32)>,
}

fn cstring(what: &str, s: &[u8]) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} contains a NUL byte")))
}

fn path_c(what: &str, p: &Path) -> Result<CString, Error> {
    use std::os::unix::ffi::OsStrExt;
    cstring(what, p.as_os_str().as_bytes())
}

impl Batch {
    pub fn new(input: impl AsRef<Path>, output: impl AsRef<Path>) -> Batch {
        Batch {
            input: input.as_ref().to_owned(),
            output: output.as_ref().to_owned(),
            flags: 0,
            endpoint: None,
            api_key_env: None,
            headers: Vec::new(),
            reorder_window: 0,
            prices: None,
            deadline: None,
            max_retries: None,
            shard: None,
        }
    }
    /// Skip custom_ids already in the output (continue an interrupted run).
    pub fn resume(self, on: bool) -> Self {
        self.set(sys::BRG_BATCH_RESUME, on)
    }
    /// Write output lines in input order (bounded by `window`; 0 = 10000).
    pub fn ordered(mut self, window: u32) -> Self {
        self.reorder_window = window;
        self.set(sys::BRG_BATCH_ORDERED, true)
    }
    /// Validate and count only; nothing is sent or written.
    pub fn dry_run(self, on: bool) -> Self {
        self.set(sys::BRG_BATCH_DRY_RUN, on)
    }
    fn set(mut self, flag: u32, on: bool) -> Self {
        if on { self.flags |= flag } else { self.flags &= !flag }
        self
    }
    /// Base for relative urls (default `$OPENAI_BASE_URL`, else api.openai.com).
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_owned());
        self
    }
    /// Name of the environment variable holding the API key (default
    /// `OPENAI_API_KEY`); the key itself never passes through this crate.
    pub fn api_key_env(mut self, name: &str) -> Self {
        self.api_key_env = Some(name.to_owned());
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    /// JSON prices file `{"model":{"input":usd_per_1M,"output":usd_per_1M}}`.
    pub fn prices(mut self, path: impl AsRef<Path>) -> Self {
        self.prices = Some(path.as_ref().to_owned());
        self
    }
    /// Per-request deadline.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
    /// Run only lines whose index % count == index.
    pub fn shard(mut self, index: u32, count: u32) -> Self {
        self.shard = Some((index, count));
        self
    }

    /// Runs the batch to its end on this thread, driving `engine` (inline
    /// mode). `progress` is called about every 100 ms and once at the end.
    /// Request failures are counted in the returned [`Progress`]
    /// (`failed`, `invalid`); `Err` means the batch could not run (bad
    /// options, unreadable input, duplicate custom_id: `Error::Invalid`) or
    /// was aborted (`Error::Cancelled`).
    pub fn run<F>(&self, engine: &mut Engine, mut progress: F) -> Result<Progress, Error>
    where
        F: FnMut(&Progress) -> Control,
    {
        let input = path_c("input path", &self.input)?;
        let output = path_c("output path", &self.output)?;
        let endpoint = self.endpoint.as_deref().map(|s| cstring("endpoint", s.as_bytes())).transpose()?;
        let key_env = self.api_key_env.as_deref().map(|s| cstring("api_key_env", s.as_bytes())).transpose()?;
        let prices = self.prices.as_deref().map(|p| path_c("prices path", p)).transpose()?;
        let hdr_c: Vec<(CString, CString)> = self
            .headers
            .iter()
            .map(|(n, v)| Ok((cstring("header name", n.as_bytes())?, cstring("header value", v.as_bytes())?)))
            .collect::<Result<_, Error>>()?;
        let hdrs: Vec<sys::brg_header> =
            hdr_c.iter().map(|(n, v)| sys::brg_header { name: n.as_ptr(), value: v.as_ptr() }).collect();
        let opts = sys::brg_batch_options {
            size: std::mem::size_of::<sys::brg_batch_options>() as u32,
            flags: self.flags,
            input_path: input.as_ptr(),
            output_path: output.as_ptr(),
            endpoint: endpoint.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            api_key_env: key_env.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            headers: if hdrs.is_empty() { std::ptr::null() } else { hdrs.as_ptr() },
            n_headers: hdrs.len() as u32,
            reorder_window: self.reorder_window,
            prices_path: prices.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            deadline_ms: self.deadline.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            max_retries: self.max_retries.map_or(-1, |n| n.min(i32::MAX as u32) as i32),
            shard_index: self.shard.map_or(0, |s| s.0),
            shard_count: self.shard.map_or(0, |s| s.1),
            reserved0: 0,
        };

        struct Ctx<'a> {
            f: &'a mut dyn FnMut(&Progress) -> Control,
            panic: Option<Box<dyn std::any::Any + Send>>,
        }
        unsafe extern "C" fn trampoline(p: *const sys::brg_batch_progress, user: *mut c_void) -> c_int {
            let ctx = &mut *(user as *mut Ctx);
            if ctx.panic.is_some() {
                return 2;
            }
            // A panic must not unwind through C: keep it, abort the run, rethrow after.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (ctx.f)(&*p))) {
                Ok(Control::Continue) => 0,
                Ok(Control::Stop) => 1,
                Ok(Control::Abort) => 2,
                Err(e) => {
                    ctx.panic = Some(e);
                    2
                }
            }
        }
        let mut ctx = Ctx { f: &mut progress, panic: None };
        let mut fin = Progress { size: std::mem::size_of::<Progress>() as u32, ..Default::default() };
        let rc = unsafe {
            sys::brg_batch_run(
                engine.as_raw(),
                &opts,
                Some(trampoline),
                &mut ctx as *mut Ctx as *mut c_void,
                &mut fin,
            )
        };
        let err = (rc != 0).then(|| Error::from_code(rc, crate::error::last_error()));
        if let Some(p) = ctx.panic.take() {
            std::panic::resume_unwind(p);
        }
        match err {
            Some(e) => Err(e),
            None => Ok(fin),
        }
    }
}
