//! Builds an image from a context directory with live progress, as
//! `buildr build -t TAG CONTEXT` does, through the library.
//!
//! ```text
//! cargo run -p buildr --example build_with_progress -- CONTEXT [TAG]
//! ```
//!
//! The store is the default one (`/var/lib/buildr` as root, else the
//! user's); an ordinary user's binary enters its rootless namespace first.

use std::sync::mpsc;

use buildr::build::ProgressEvent;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First thing: this process may be re-executed as a sandbox's init.
    buildr::entry_hook();
    // Before any thread: as an ordinary user, join the user's namespace.
    buildr::sandbox::rootless::enter()?;

    let mut args = std::env::args().skip(1);
    let context = args
        .next()
        .ok_or("usage: build_with_progress CONTEXT [TAG]")?;
    let tag = args.next().unwrap_or_else(|| "example:latest".into());

    let (events, progress) = mpsc::channel();
    let printer = std::thread::spawn(move || {
        for event in progress {
            match &event {
                ProgressEvent::Started { vertex, .. } => eprintln!("=> {}", vertex.name),
                ProgressEvent::Cached { vertex, .. } => eprintln!("=> CACHED {}", vertex.name),
                ProgressEvent::Log { data, .. } => eprint!("   {}", String::from_utf8_lossy(data)),
                ProgressEvent::Finished {
                    vertex, duration, ..
                } => {
                    eprintln!("=> DONE {} ({:.1}s)", vertex.name, duration.as_secs_f64())
                }
                ProgressEvent::Failed {
                    vertex, message, ..
                } => {
                    eprintln!("=> ERROR {}: {message}", vertex.name)
                }
            }
        }
    });
    let result = buildr::Builder::new(buildr::default_root()?)
        .context_dir(&context)
        .tag(&tag)
        .progress(events)
        .build();
    // The builder dropped its sender: the printer has seen every event.
    let _ = printer.join();
    let result = result?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    println!("{} {}", result.image_id, result.tags.join(" "));
    Ok(())
}
