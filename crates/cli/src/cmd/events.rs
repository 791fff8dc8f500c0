//! `buildr events`: buildr's own events as docker prints them, one line
//! each (`TIME TYPE ACTION ACTOR (k=v, ...)`) or through `--format`;
//! logged events since `--since`, then new ones until `--until` passes or
//! the command is interrupted.

use std::io::Write;
use std::process::ExitCode;

use buildr::events::{EventFilters, EventLog, FollowOptions, parse_timestamp};

use super::gotemplate::GoTemplate;
use crate::args::{Cli, EventsArgs};

pub fn run(cli: &Cli, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let root = super::store_root(cli)?;
    let filters = EventFilters::parse(&args.filter)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let time = |text: &Option<String>| text.as_deref().map(|t| parse_timestamp(t, now)).transpose();
    let options = FollowOptions {
        since: time(&args.since)?,
        until: time(&args.until)?,
    };
    let template = match &args.format {
        Some(format) => Some(GoTemplate::parse(
            &format.replace("\\t", "\t").replace("\\n", "\n"),
        )?),
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    let mut failure = None;
    EventLog::open(&root).follow(options, |event| {
        if !filters.matches(event) {
            return true;
        }
        let line = match &template {
            Some(template) => template.render(&event.docker_json()),
            None => Ok(event.text()),
        };
        let written = match line {
            Ok(line) => writeln!(stdout, "{line}").and_then(|()| stdout.flush()),
            Err(err) => {
                failure = Some(err);
                return false;
            }
        };
        // A closed stdout (`| head -1`) ends the stream.
        written.is_ok()
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(ExitCode::SUCCESS)
}
