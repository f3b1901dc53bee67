//! `otgate detector eval`: the live detector's code on recorded or public data, offline.

use std::io::BufReader;

use anyhow::{Context, Result, bail};

use otgate_detector::DetectorConfig;
use otgate_detector::eval::roc::Report;
use otgate_detector::eval::{events, pcap, sea};

use crate::cli::{Cli, DetectorCommand, EvalArgs};
use crate::config::Config;
use crate::output;

/// Largest capture read.
const MAX_CAPTURE: u64 = 512 * 1024 * 1024;

pub fn run(cli: &Cli, command: &DetectorCommand) -> Result<()> {
    match command {
        DetectorCommand::Eval(args) => {
            let report = eval(args)?;
            if cli.json {
                return output::json(&report);
            }
            print!("{}", report.text());
            Ok(())
        }
    }
}

fn eval(args: &EvalArgs) -> Result<Report> {
    let config = match &args.config {
        Some(path) => Config::load(path)?.detector,
        None => DetectorConfig::default(),
    };
    if let Some(dir) = &args.sea {
        if !(0.0..1.0).contains(&args.max_false_alarm) {
            bail!("--max-false-alarm is a fraction below 1, such as 0.013");
        }
        return Ok(sea::evaluate(dir, args.max_false_alarm)?);
    }
    if let Some(file) = &args.events {
        let reader =
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        return Ok(events::evaluate(
            &file.display().to_string(),
            BufReader::new(reader),
            config,
        )?);
    }
    if let (Some(capture), Some(labels)) = (&args.pcap, &args.labels) {
        let size = std::fs::metadata(capture)
            .with_context(|| format!("reading {}", capture.display()))?
            .len();
        if size > MAX_CAPTURE {
            bail!(
                "{} is {size} bytes; at most {MAX_CAPTURE} are read",
                capture.display()
            );
        }
        let bytes =
            std::fs::read(capture).with_context(|| format!("reading {}", capture.display()))?;
        let text = std::fs::read_to_string(labels)
            .with_context(|| format!("reading {}", labels.display()))?;
        let name = capture.file_name().map_or_else(
            || capture.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let labels = pcap::labels(&labels.display().to_string(), &text)?;
        return Ok(pcap::evaluate(&name, &bytes, &labels, config)?);
    }
    bail!("give --sea DIR, --events FILE or --pcap FILE --labels FILE")
}
