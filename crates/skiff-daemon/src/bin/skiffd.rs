//! skiffd: the daemon alone (`skiff daemon` is the same thing inside the CLI).

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: skiffd [-H unix:///path|tcp://127.0.0.1:PORT]... [--config-file FILE] [--data-root DIR]\n              [-D|--debug] [--log-level LEVEL] [--log-format text|json] [-G|--group GROUP]"
    );
    std::process::exit(2)
}

fn main() {
    let mut opts = skiff_daemon::DaemonOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage())
        };
        match flag.as_str() {
            "-H" | "--host" => opts.hosts.push(val()),
            "--config-file" => opts.config_file = Some(PathBuf::from(val())),
            "--data-root" => opts.data_root = Some(PathBuf::from(val())),
            "--exec-root" => opts.exec_root = Some(PathBuf::from(val())),
            "-D" | "--debug" => opts.debug = true,
            "-l" | "--log-level" => opts.log_level = Some(val()),
            "--log-format" => opts.log_json = val() == "json",
            "-G" | "--group" => opts.group = Some(val()),
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("skiffd: unknown flag {a}");
                usage()
            }
        }
    }
    if let Err(e) = skiff_daemon::run(opts) {
        eprintln!("skiffd: {e}");
        std::process::exit(1);
    }
}
