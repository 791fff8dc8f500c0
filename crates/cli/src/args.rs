//! Command-line arguments, one clap struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod resources;
pub use resources::{ContainersArgs, StatsArgs, TopArgs, UpdateArgs};

/// buildr: build Dockerfiles into OCI images and run them, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "buildr", version, about)]
pub struct Cli {
    /// The store directory (default: /var/lib/buildr as root, else
    /// $XDG_DATA_HOME/buildr or ~/.local/share/buildr).
    #[arg(long, global = true, env = "BUILDR_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Say more on stderr: -v info, -vv debug, -vvv trace (before the
    /// command: `buildr -v build .`; `run -v` is a volume).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log filter: error, warn (the default), info, debug, trace, or
    /// tracing's directives (`buildr_oci=debug`); also $BUILDR_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// Check a Dockerfile for errors and warnings without building it.
    Check(CheckArgs),
    /// List images.
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Remove one or more images (untag; blobs go with `prune`).
    Rmi(RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Show the history of an image: its layers and the steps that made them.
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load images from a tar archive or STDIN.
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Remove unused data: untagged images' content, dangling snapshots.
    Prune(PruneArgs),
    /// Check the whole store: every blob re-hashed, every tag, cache record,
    /// snapshot and container complete. Exits 1 on any problem.
    Verify(VerifyArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
    /// Show buildr's version, as `docker version` (`--format` a Go template).
    Version(FormatArgs),
    /// Show system-wide information, as `docker info` (`--format` a Go template).
    Info(FormatArgs),
    /// Get real time events: containers' and images' state changes.
    Events(EventsArgs),
    /// Manage buildr.
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage build caches kept in registries (`--cache-to type=registry`).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Create and run a new container from an image.
    Run(Box<RunArgs>),
    /// Create a new container (run it with `start`).
    Create(Box<RunArgs>),
    /// Start one or more created or stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers (stop signal, then SIGKILL).
    Stop(StopArgs),
    /// Send a signal to one or more running containers.
    Kill(KillArgs),
    /// Restart one or more containers (stop, then start detached).
    Restart(StopArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Pause all processes within one or more containers (cgroup freezer).
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers.
    Unpause(ContainersArgs),
    /// Display the running processes of a container.
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(StatsArgs),
    /// Update configuration (limits, restart policy) of one or more containers.
    Update(UpdateArgs),
    /// List a container's port publications, or the host side of one.
    Port(PortArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// List containers.
    Ps(PsArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(WaitArgs),
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Attach this terminal to a running container's pty (`-t`).
    Attach(AttachArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Multi-container applications from compose files (`config` only so far).
    Compose(ComposeArgs),
    /// Create a new image from a stopped container's changes.
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ExportArgs),
    /// OCI runtime bundles: unpack an image into one, run one.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Print the shell completion script (bash, zsh or fish).
    Completion(CompletionArgs),
}

impl Command {
    /// Whether the command touches the store or containers, and so runs
    /// in an ordinary user's namespace (rootless); checking a Dockerfile
    /// and registry-only commands do not.
    pub fn needs_namespace(&self) -> bool {
        !matches!(
            self,
            Command::Check(_)
                | Command::Login(_)
                | Command::Logout(_)
                | Command::Cache(_)
                | Command::Version(_)
                | Command::Completion(_)
        )
    }
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell the script is for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show images of this repository (and tag).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub repository: Option<String>,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show all images (buildr keeps no intermediate images: the same list).
    #[arg(short, long)]
    pub all: bool,
    /// Show the manifest digests.
    #[arg(long)]
    pub digests: bool,
    /// Format each image with a Go template (`{{.Repository}}:{{.Tag}}`,
    /// `{{json .}}`); `table ...` adds a header and aligns the columns.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Filter (repeatable, ANDed): `dangling=true|false`,
    /// `reference=PATTERN` (`app:1.*`, `*/app`), `before=IMAGE`,
    /// `since=IMAGE`, `label=KEY[=VALUE]`.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (`-H=false`: bytes
    /// and RFC 3339 times).
    #[arg(
        short = 'H',
        long,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format each row with a Go template (`{{.CreatedBy}}`, `{{json .}}`);
    /// `table ...` adds a header and aligns the columns.
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of an image given by id that has several tags.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Only look for this kind of object: image or container (default:
    /// an image, else a container).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["image", "container"])]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub images: Vec<String>,
    /// Format each document with a Go template (`{{.State.Status}}`,
    /// `{{json .Config}}`, `{{range ...}}...{{end}}`), as docker's `-f`.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive layout: `docker` (docker-archive) or `oci` (OCI image layout).
    #[arg(long, default_value = "docker", value_parser = ["docker", "oci"])]
    pub format: String,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Set commit message for imported image.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform (only `linux/<arch>`).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// The root filesystem tar (`-` for STDIN).
    #[arg(value_name = "FILE|-")]
    pub file: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove all build cache, keeping only tagged images.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Set platform if the image is multi-platform (`os/arch[/variant]`).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (insecure: use --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show buildr disk usage.
    Df,
    /// Remove stopped containers, dangling images, unused build cache
    /// (and unused volumes with --volumes).
    Prune(SystemPruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Delete the entries of a registry cache last exported longer ago than --keep-duration.
    Prune(CachePruneArgs),
}

#[derive(Debug, Args)]
pub struct CachePruneArgs {
    /// The cache, as `--cache-to type=registry,ref=` names it.
    #[arg(long = "ref", value_name = "REG/REPO[:TAG]")]
    pub reference: String,
    /// Keep entries exported within this long (Go duration: 168h, 30m, ...).
    #[arg(long = "keep-duration", value_name = "DURATION", default_value = "0")]
    pub keep_duration: String,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Prune anonymous volumes no container uses.
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/dockerfile); `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The build context directory.
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`); may be given several times.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/dockerfile); `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build-time variable (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use cache for this stage (repeatable).
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// Always attempt to pull a newer base image.
    #[arg(long)]
    pub pull: bool,
    /// Export the build cache: `type=registry,ref=REG/REPO[:TAG][,mode=min|max]` or `type=local,dest=DIR` (repeatable).
    #[arg(
        long = "cache-to",
        value_name = "type=registry,ref=REF|type=local,dest=DIR"
    )]
    pub cache_to: Vec<String>,
    /// Use a build cache: `type=registry,ref=REF`, `type=local,src=DIR` or `REF`; tried in order (repeatable).
    #[arg(
        long = "cache-from",
        value_name = "REF|type=registry,ref=REF|type=local,src=DIR"
    )]
    pub cache_from: Vec<String>,
    /// Push every `-t` name to its registry after the build.
    #[arg(long)]
    pub push: bool,
    /// Set metadata on the image (`KEY=VALUE`).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Network for RUN steps: default, none or host.
    #[arg(long, default_value = "default", value_parser = ["default", "none", "host"])]
    pub network: String,
    /// Extra privileges: `network.host`.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=NAME,src=FILE` or `id=NAME,env=VAR`.
    #[arg(long = "secret", value_name = "id=NAME,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// An ssh-agent socket for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK) or `ID=SOCKET`.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Target platform (only the host's, e.g. linux/amd64).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Progress output: auto (tty on a terminal, else plain), tty (live view), plain or json.
    #[arg(long, default_value = "auto", value_parser = ["auto", "tty", "plain", "json"])]
    pub progress: String,
    /// Suppress the build output and print the image ID on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Steps run at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// Output: `type=image|oci|docker|local|tar,dest=PATH` (or a directory);
    /// layers: `compression=gzip|zstd|uncompressed,compression-level=N`
    /// (default gzip level 1); `rewrite-timestamp=true|false`: whether
    /// SOURCE_DATE_EPOCH clamps file times in the layers (default true).
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub output: Option<String>,
    /// The build context directory, or `-` for a tar on stdin.
    #[arg(value_name = "CONTEXT|-")]
    pub context: String,
}

/// `run` and `create` flags (docker's).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container (and its anonymous volumes) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (`KEY=VALUE`, or `KEY` to take it from here).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file (`KEY=VALUE` lines, `#` comments).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Username or UID (`name|uid[:group|gid]`).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network: bridge (the default, as docker's: buildr0, 10.88.0.0/16, NAT),
    /// none (loopback only), host, or the name of a network from `network
    /// create` (containers on it resolve each other by name).
    #[arg(long, visible_alias = "net", default_value = "bridge")]
    pub network: String,
    /// Another name for the container on its user-defined network's DNS.
    #[arg(
        long = "network-alias",
        visible_alias = "net-alias",
        value_name = "ALIAS"
    )]
    pub network_alias: Vec<String>,
    /// A fixed IPv4 address on its user-defined network.
    #[arg(long, value_name = "IPv4")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Add a line to /etc/hosts (`NAME:IP`).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Set the container's nameservers (replacing the network's).
    #[arg(long, value_name = "IP")]
    pub dns: Vec<std::net::IpAddr>,
    /// Publish a container's port to the host (needs --network bridge).
    #[arg(short, long = "publish", value_name = "[IP:]HOST:CTR[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports (needs --network bridge).
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Memory limit (e.g. 256m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Tune the container pids limit.
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<u64>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Bind mount a volume (`SRC:DST[:ro]`, `NAME:DST`, `DST`).
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (`type=bind|volume|tmpfs,source=..,target=..`).
    #[arg(long = "mount", value_name = "SPEC")]
    pub mount: Vec<String>,
    /// Command to run to check health (run with /bin/sh -c).
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between running the check (e.g. 30s, 1m30s, 500ms).
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run.
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Start period during which failed checks do not count.
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period.
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Set metadata on the container (`KEY=VALUE`).
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Keep STDIN open: pass this process's stdin to the container
    /// (foreground runs only).
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY (foreground only).
    #[arg(short, long)]
    pub tty: bool,
    /// Restart policy when the container exits: `no`, `on-failure[:N]`, `always`,
    /// `unless-stopped` (applied by the container's detached supervisor).
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep STDIN open: pass this process's stdin to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY (foreground only).
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (`KEY=value`).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Username or UID (`name|uid[:group|gid]`).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and wait for the exit (exit with its code).
    #[arg(short, long)]
    pub attach: bool,
    /// Attach STDIN too (with `-a`): this process's stdin goes to the container.
    #[arg(short, long)]
    pub interactive: bool,
    /// Start every stopped container whose restart policy is `always`, or
    /// `unless-stopped` and not stopped by the user (what a boot runs).
    #[arg(long, conflicts_with_all = ["attach", "containers"])]
    pub all_restartable: bool,
    #[arg(required_unless_present = "all_restartable", value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show the events logged since this time (Unix seconds, RFC 3339, or
    /// a duration ago: `10m`), then follow.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stop once this time has passed (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Filter (repeatable; one key's values ORed, keys ANDed):
    /// `type=container|image`, `event=ACTION`, `container=NAME|ID`,
    /// `image=NAME|ID`, `label=KEY[=VALUE]`.
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Format each event with a Go template (`{{json .}}`, `{{.Action}}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Format the output with a Go template (`{{.Server.Version}}`, `{{json .}}`).
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this container port (`80` or `80/tcp`).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output with a template (`table {{.ID}}\t{{.Status}}`, `{{json .}}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Filter output (`status=created|restarting|running|paused|exited`, `name=`, `label=`, `id=`).
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Display total file sizes: the writable layer's, and with the
    /// image's layers (`virtual`).
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs (`all` for all).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Format each document with a Go template, as docker's `-f`.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(alias = "ps", alias = "list")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(ContainerInspectArgs),
    /// Start one or more stopped containers (`--all-restartable`: at boot).
    Start(StartArgs),
    /// Remove all stopped containers.
    Prune {
        /// Do not ask (buildr never asks; accepted for docker's scripts).
        #[arg(short, long)]
        force: bool,
    },
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(ExportArgs),
}

/// `cp CONTAINER:SRC_PATH DEST_PATH|-` or `cp SRC_PATH|- CONTAINER:DEST_PATH`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is
    /// automatically suppressed if no terminal is attached.
    #[arg(short, long)]
    pub quiet: bool,
    /// `CONTAINER:SRC_PATH`, a local path, or `-` (a tar stream on stdin).
    #[arg(value_name = "SRC_PATH", allow_hyphen_values = true)]
    pub src: String,
    /// `CONTAINER:DEST_PATH`, a local path, or `-` (a tar stream on stdout).
    #[arg(value_name = "DEST_PATH", allow_hyphen_values = true)]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `buildr compose`: the project flags, then a subcommand.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose configuration files (default: compose.yaml and the like, searched upward).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the project directory's name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the first file's directory).
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (default: `.env` in the project directory).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Enable a profile (repeatable; default: `COMPOSE_PROFILES`).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Parse, resolve and render the compose file in canonical format.
    Config {
        /// Print the service names, one per line.
        #[arg(long)]
        services: bool,
        /// Print the volume names, one per line.
        #[arg(long)]
        volumes: bool,
        /// Format the output: yaml or json.
        #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
        format: String,
        /// Only validate the configuration, print nothing.
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network (a bridge of its own, with DNS for its containers).
    Create {
        /// Driver: only `bridge`.
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR form (default: the first free /24 of 10.89.0.0/16).
        #[arg(long)]
        subnet: Option<String>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Set metadata on the network (`KEY=VALUE`).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        #[arg(value_name = "NETWORK")]
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long)]
        no_trunc: bool,
        /// Format output with a Go template (`{{.Name}}`, `{{json .}}`).
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format output with a Go template.
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Connect a container to a network (besides the one it was created on).
    Connect {
        /// Another name for the container on the network's DNS.
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
        /// A fixed IPv4 address on the network.
        #[arg(long, value_name = "IPv4")]
        ip: Option<std::net::Ipv4Addr>,
        #[arg(value_name = "NETWORK")]
        network: String,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Disconnect a container from a network it was connected to.
    Disconnect {
        /// Accepted for docker's scripts (buildr's disconnect needs no force).
        #[arg(short, long)]
        force: bool,
        #[arg(value_name = "NETWORK")]
        network: String,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true, value_name = "NETWORK")]
        names: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not ask (buildr never asks; accepted for docker's scripts).
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create {
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove one or more volumes.
    Rm {
        /// Remove even when a container uses it.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove unused volumes (anonymous only, unless --all).
    Prune {
        #[arg(short, long)]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `buildr bundle`: OCI runtime bundles (a `config.json` and a root filesystem).
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Unpack an image into an OCI runtime bundle: DIR/rootfs and
    /// DIR/config.json, which `runc run -b DIR` runs (as `umoci unpack`).
    Unpack {
        #[arg(value_name = "IMAGE")]
        image: String,
        /// The bundle directory: must not exist, or be empty.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Replaces the image's Cmd in config.json (as `docker run IMAGE COMMAND`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Run an OCI runtime bundle (e.g. from `umoci unpack`) in the
    /// foreground under buildr's sandbox, as `runc run` would.
    Run {
        /// The bundle directory (holding config.json).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First remove corrupt blobs and the cache records they leave dangling
    /// (the next pull or build writes them again), then check.
    #[arg(long)]
    pub repair: bool,
}

/// docker's commands buildr does not have yet (`docs/docker-compat.md`'s
/// "not yet" command rows): asked for, they are named as such instead of
/// getting clap's guess at a similar command (`stats` is not `start`).
pub const NOT_YET: [&str; 0] = [];

/// buildr's whole command line as clap sees it: the derived definitions
/// with each command's examples (`help_examples`) under its `--help`.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    crate::help_examples::apply(Cli::command())
}

/// Parses this process's arguments against [`command`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// Reports a command-line error as clap does, but a docker command buildr
/// does not have yet is said to be one (exit status 1, as docker's
/// unknown commands).
pub fn parse_error(err: clap::Error) -> std::process::ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(name)) = err.get(ContextKind::InvalidSubcommand)
        && NOT_YET.contains(&name.as_str())
    {
        eprintln!(
            "buildr: '{name}' is a docker command buildr does not have yet (see docs/docker-compat.md)"
        );
        return std::process::ExitCode::from(1);
    }
    let code = err.exit_code();
    let _ = err.print();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(2))
}
