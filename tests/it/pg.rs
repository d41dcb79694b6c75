//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a
//! temporary directory, `postgres` on a free loopback port (its socket in
//! the same directory), stopped — immediately, as a crash would — on drop.
//!
//! The binaries come from `STOCKROUTE_PG_BIN` if set, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package, which
//! `.ci/run` installs), else the directory of `initdb` on `PATH`.
//! PostgreSQL refuses to run as root; when the tests run as root (CI), the
//! cluster runs as the unprivileged user `nobody` (its uid and gid from
//! /etc/passwd), which owns the temporary directory.

#![allow(dead_code)]

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a cluster trades safety for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync off: commits survive the server being killed, not the machine
    /// crashing. For tests.
    Fast,
    /// PostgreSQL's defaults (fsync and synchronous commit on). For benchmarks.
    Full,
}

/// A running (or stopped) throwaway cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    durability: Durability,
    child: Option<Child>,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgCluster(127.0.0.1:{})", self.port)
    }
}

/// Where the server binaries are.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("STOCKROUTE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return dir;
        }
    }
    panic!(
        "PostgreSQL server binaries not found: install Debian's `postgresql` package \
         (.ci/run does) or set STOCKROUTE_PG_BIN to the directory holding initdb and postgres"
    );
}

/// The uid and gid of `nobody`, when this process is root.
fn unprivileged(probe: &Path) -> Option<(u32, u32)> {
    let me = std::fs::metadata(probe).ok()?.uid();
    if me != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let found = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"nobody") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    });
    Some(found.unwrap_or((65534, 65534)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgCluster {
    /// initdb and start, fsync off.
    pub fn start() -> PgCluster {
        Self::start_with(Durability::Fast)
    }

    /// initdb and start.
    pub fn start_with(durability: Durability) -> PgCluster {
        let dir = tempfile::Builder::new()
            .prefix("stockroute-pg-")
            .tempdir()
            .expect("tempdir");
        let run_as = unprivileged(dir.path());
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the cluster dir");
        }
        let mut cluster = PgCluster {
            bin: bin_dir(),
            port: 0,
            run_as,
            durability,
            dir,
            child: None,
        };
        let status = cluster
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(cluster.data())
            .stdout(Stdio::null())
            .stderr(cluster.log())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed: {}", cluster.log_text());
        cluster.start_server();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> Stdio {
        let path = self.dir.path().join("server.log");
        let f = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open the server log");
        if let Some((uid, gid)) = self.run_as {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
        }
        Stdio::from(f)
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        c.env("LC_ALL", "C");
        c
    }

    /// Starts the server (again, after [`Self::crash`], on the same port).
    pub fn start_server(&mut self) {
        assert!(self.child.is_none(), "already running");
        for _ in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            let mut c = self.command("postgres");
            c.arg("-D")
                .arg(self.data())
                .args(["-p", &self.port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!(
                    "unix_socket_directories={}",
                    self.dir.path().display()
                ))
                .args(["-c", "max_connections=300", "-c", "shared_buffers=128MB"]);
            if self.durability == Durability::Fast {
                c.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
            }
            let child = c
                .stdout(Stdio::null())
                .stderr(self.log())
                .spawn()
                .expect("start postgres");
            self.child = Some(child);
            if self.wait_accepting(Duration::from_secs(60)) {
                return;
            }
            // Port taken meanwhile, most likely: another one.
            self.kill_child();
            self.port = 0;
        }
        panic!("postgres did not start: {}", self.log_text());
    }

    fn wait_accepting(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stops the server as a crash would (immediate shutdown: no checkpoint;
    /// recovery replays the WAL on the next start).
    pub fn crash(&mut self) {
        if self.child.is_none() {
            return;
        }
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.kill_child();
    }

    fn kill_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for `dbname`.
    pub fn url_for(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// A connection string for the default database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Creates a database (for tests that want one each on a shared cluster).
    pub fn create_database(&self, name: &str) {
        let status = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ])
            .status()
            .expect("run createdb");
        assert!(status.success(), "createdb {name} failed");
    }

    /// Runs SQL through psql and returns its unaligned output.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                dbname,
            ])
            .args(["-c", sql])
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Where the binaries are (pgbench lives there too).
    pub fn bin(&self) -> &Path {
        &self.bin
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.crash();
    }
}
