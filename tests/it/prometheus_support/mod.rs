//! A real Prometheus and Pushgateway (Debian's `prometheus` and
//! `prometheus-pushgateway`), started by the test process on free loopback
//! ports, Prometheus scraping the gateway every second. A detached reaper
//! stops both and removes their directory when the test process exits.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Monitoring {
    pub pushgateway: String,
    pub prometheus: String,
    pub dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn need(binary: &str, package: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(binary);
    assert!(
        path.exists(),
        "{} missing: install Debian's `{package}` (scripts/ensure-deps.sh does)",
        path.display()
    );
    path
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`; (status, body).
pub fn get(url: &str) -> Result<(u16, String), String> {
    let mut r = agent().get(url).call().map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn wait_ready(url: &str, what: &str, log: &std::path::Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if matches!(get(url), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} not ready at {url} within 30 s; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl Monitoring {
    pub fn start() -> Monitoring {
        let gateway_bin = need("prometheus-pushgateway", "prometheus-pushgateway");
        let prometheus_bin = need("prometheus", "prometheus");
        let dir = std::env::temp_dir().join(format!(
            "climate-jobs-prometheus-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("creating the Prometheus directory");
        let gw_port = free_port();
        let gw_log = dir.join("pushgateway.log");
        let gateway = Command::new(gateway_bin)
            .arg(format!("--web.listen-address=127.0.0.1:{gw_port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&gw_log).expect("gateway log"))
            .stderr(std::fs::File::create(dir.join("pushgateway.err")).expect("gateway log"))
            .spawn()
            .expect("starting prometheus-pushgateway");
        let prom_port = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
             static_configs:\n      - targets: ['127.0.0.1:{gw_port}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("writing prometheus.yml");
        let prom_log = dir.join("prometheus.log");
        let prometheus = Command::new(prometheus_bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&prom_log).expect("prometheus log"))
            .spawn()
            .expect("starting prometheus");
        // Stop both (by their pids) and clean up once this test process exits.
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill {gw} {pr} 2>/dev/null; sleep 1; kill -9 {gw} {pr} 2>/dev/null; rm -rf {dir}",
            me = std::process::id(),
            gw = gateway.id(),
            pr = prometheus.id(),
            dir = dir.display()
        );
        let reaper = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting the reaper");
        assert!(reaper.success());
        let m = Monitoring {
            pushgateway: format!("http://127.0.0.1:{gw_port}"),
            prometheus: format!("http://127.0.0.1:{prom_port}"),
            dir,
            children: vec![gateway, prometheus],
        };
        wait_ready(
            &format!("{}/-/ready", m.pushgateway),
            "pushgateway",
            &m.dir.join("pushgateway.err"),
        );
        wait_ready(
            &format!("{}/-/ready", m.prometheus),
            "prometheus",
            &prom_log,
        );
        m
    }

    /// An instant query through the HTTP API: the `data.result` array.
    /// Panics on an API error (a bad expression included).
    pub fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v1/query?query={}", self.prometheus, encode(expr));
        let (status, body) = get(&url).unwrap_or_else(|e| panic!("querying {expr}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{expr}: not JSON ({e}): {body}"));
        assert_eq!(status, 200, "{expr}: HTTP {status}: {body}");
        assert_eq!(v["status"], "success", "{expr}: {body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The single value of `expr` once Prometheus has it (scraped every
    /// second), waiting up to 30 s for `want` to hold.
    pub fn wait_value(&self, expr: &str, want: impl Fn(f64) -> bool) -> f64 {
        let start = Instant::now();
        let mut last = Vec::new();
        while start.elapsed() < Duration::from_secs(30) {
            last = self.query(expr);
            if let [one] = last.as_slice()
                && let Some(v) = one["value"][1].as_str().and_then(|s| s.parse::<f64>().ok())
                && want(v)
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{expr}: no single value as wanted within 30 s; last result {last:?}");
    }

    /// What the Pushgateway serves now (its /metrics page).
    pub fn gateway_page(&self) -> String {
        get(&format!("{}/metrics", self.pushgateway))
            .expect("reading the pushgateway")
            .1
    }
}

/// Percent-encodes a query parameter.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
