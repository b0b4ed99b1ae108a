//! Overhead per request over the C ABI: N requests at W in flight against the
//! mock, (a) the plain C ABI loop (brg_submit / poll(2) on the results fd /
//! brg_results on a threaded engine, through `barrage::sys`, nothing else) and
//! (b) the tokio API (`AsyncEngine::unordered`). Same process, same library,
//! runs alternate; reports process CPU (user+sys, all threads incl. the
//! engine's reactor) per request and the ratio. Run by hand under the bench lock:
//!   flock /tmp/barrage-bench.lock cargo run --release --features tokio \
//!     --example bench_async -- [N] [W] [ROUNDS]
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use barrage::aio::{next, AsyncEngine};
use barrage::{sys, Config, Engine, Request};

#[repr(C)]
struct RUsage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}
extern "C" {
    fn getrusage(who: i32, r: *mut RUsage) -> i32;
    fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
}

fn cpu() -> Duration {
    let mut r = RUsage { utime: [0; 2], stime: [0; 2], rest: [0; 14] };
    unsafe { getrusage(0, &mut r) };
    let us = |t: [i64; 2]| t[0] as u64 * 1_000_000 + t[1] as u64;
    Duration::from_micros(us(r.utime) + us(r.stime))
}

fn config(ca: &str, w: usize) -> Config {
    Config::new().ca_file(ca).max_inflight(w as u32).max_pending(w as u64 * 2)
}

fn req(url: &str) -> Request {
    Request::new(url).json(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
}

/// The C ABI loop: keep W submitted, wait on the results fd, take results.
fn run_c(url: &str, ca: &str, n: usize, w: usize) -> (Duration, Duration) {
    let e = Engine::new(config(ca, w)).unwrap().start().unwrap();
    let r = req(url);
    let (c0, t0) = (cpu(), Instant::now());
    let (mut sent, mut done, mut ok) = (0usize, 0usize, 0usize);
    let mut buf = vec![std::ptr::null_mut::<sys::brg_result>(); 256];
    let mut pfd = PollFd { fd: e.results_fd(), events: 1, revents: 0 };
    while done < n {
        while sent < n && sent - done < w {
            e.submit(&r).expect("submit");
            sent += 1;
        }
        unsafe { poll(&mut pfd, 1, 1000) };
        loop {
            // ThreadedEngine::results would wrap each result; the baseline
            // calls brg_results itself (as a C client would).
            let got = unsafe { sys::brg_results(e_raw(&e), buf.as_mut_ptr(), buf.len()) };
            for &p in &buf[..got] {
                if unsafe { (*p).status } == 0 {
                    ok += 1;
                }
                unsafe { sys::brg_result_free(p) };
            }
            done += got;
            if got < buf.len() {
                break;
            }
        }
    }
    let out = (cpu() - c0, t0.elapsed());
    assert_eq!(ok, n, "C loop: {} of {n} failed", n - ok);
    out
}

/// The raw pointer of a ThreadedEngine, via its stats-free public surface:
/// the C loop is the only consumer, as brg_results requires.
fn e_raw(e: &barrage::ThreadedEngine) -> *mut sys::brg_engine {
    e.as_raw()
}

fn run_async(rt: &tokio::runtime::Runtime, url: &str, ca: &str, n: usize, w: usize) -> (Duration, Duration) {
    rt.block_on(async {
        let e = AsyncEngine::new(config(ca, w)).unwrap();
        let r = req(url);
        let (c0, t0) = (cpu(), Instant::now());
        let mut s = e.unordered((0..n).map(|_| r.clone()), w);
        let mut ok = 0;
        while let Some((_, res)) = next(&mut s).await {
            ok += res.is_ok() as usize;
        }
        let out = (cpu() - c0, t0.elapsed());
        assert_eq!(ok, n, "async: {} of {n} failed", n - ok);
        out
    })
}

fn main() {
    let mut a = std::env::args().skip(1);
    let n: usize = a.next().map_or(50_000, |s| s.parse().unwrap());
    let w: usize = a.next().map_or(500, |s| s.parse().unwrap());
    let rounds: usize = a.next().map_or(2, |s| s.parse().unwrap());
    let mock_path = std::env::var("BARRAGE_MOCKSERVER")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../build/mockserver/barrage-mockserver").into());
    let ca = std::env::temp_dir().join(format!("barrage-bench-ca-{}.pem", std::process::id()));
    let mut mock = Command::new(&mock_path)
        .args(["--port", "0", "--write-ca"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mock");
    let mut line = String::new();
    BufReader::new(mock.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("{}/v1/chat/completions", line.trim().strip_prefix("listening on ").unwrap());
    let ca_s = ca.to_str().unwrap().to_owned();
    // Current-thread runtime: the driver task and the consumer share one
    // thread, as the C loop does; the engine has its own reactor thread in both.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Warm-up (connections, TLS sessions, page faults) for both paths.
    run_c(&url, &ca_s, 2_000, w);
    run_async(&rt, &url, &ca_s, 2_000, w);
    let (mut c_cpu, mut a_cpu, mut c_wall, mut a_wall) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let (c, cw) = run_c(&url, &ca_s, n, w);
        let (x, xw) = run_async(&rt, &url, &ca_s, n, w);
        println!("round: C ABI loop cpu {:?} wall {:?} | async cpu {:?} wall {:?}", c, cw, x, xw);
        c_cpu += c;
        a_cpu += x;
        c_wall += cw;
        a_wall += xw;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (n * rounds) as f64;
    println!(
        "N={n} W={w} rounds={rounds}: CPU/request C ABI loop {:.2} us, Rust async {:.2} us, ratio {:.3}; wall C {:.3}s async {:.3}s",
        per(c_cpu),
        per(a_cpu),
        a_cpu.as_secs_f64() / c_cpu.as_secs_f64(),
        c_wall.as_secs_f64() / rounds as f64,
        a_wall.as_secs_f64() / rounds as f64
    );
    let _ = mock.kill();
    let _ = mock.wait();
    let _ = std::fs::remove_file(&ca);
}
