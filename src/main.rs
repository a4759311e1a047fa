//! `pinpoint`: the command-line face of the engine. This file parses arguments and hands each
//! command to the library; `cli/` renders results for people (`--json` for programs).
//!
//! Exit codes: 0 success, 1 partial success (per-file errors listed), 2 usage or fatal error.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "pinpoint",
    version,
    about = "Find where your photos were taken",
    max_term_width = 100
)]
struct Cli {
    /// Catalog file [default: the platform data folder, or $PINPOINT_CATALOG]
    #[arg(long, global = true, value_name = "PATH")]
    catalog: Option<PathBuf>,

    /// Print results as JSON on standard output
    #[arg(long, global = true)]
    json: bool,

    /// Do not show progress on standard error
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage library roots: the folders whose photos Pinpoint catalogues
    #[command(subcommand)]
    Library(LibraryCommand),

    /// Scan library roots: catalogue new and changed photos, track moved and deleted ones
    Scan(ScanArgs),

    /// List catalogued photos
    #[command(subcommand)]
    Photos(PhotosCommand),

    /// Show everything the catalog knows about one photo
    Show {
        /// The photo's path
        path: PathBuf,
    },

    /// Make (or find) a photo's thumbnail and print its path
    Thumbnail {
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ThumbSize::Grid)]
        size: ThumbSize,
    },

    /// Check the catalog file's integrity
    Check,
}

#[derive(Subcommand)]
enum LibraryCommand {
    /// Add folders as library roots
    Add {
        #[arg(required = true)]
        folders: Vec<PathBuf>,
        /// Scan the new roots right away
        #[arg(long)]
        scan: bool,
    },
    /// Remove a library root; its photos leave the catalog (the files are not touched)
    Remove { folder: PathBuf },
    /// List library roots
    List,
}

#[derive(Args)]
struct ScanArgs {
    /// Roots to scan [default: all]
    roots: Vec<PathBuf>,
    /// Also scan folders whose names start with a dot
    #[arg(long)]
    include_hidden: bool,
    /// Reader threads [default: twice the cores]
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum PhotosCommand {
    /// List photos (present ones unless --missing)
    List {
        /// Only photos with a location
        #[arg(long, conflicts_with_all = ["untagged"])]
        tagged: bool,
        /// Only photos without a location
        #[arg(long)]
        untagged: bool,
        /// Only photos whose files are gone
        #[arg(long)]
        missing: bool,
        /// At most this many
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ThumbSize {
    Grid,
    Preview,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cli::Context::new(cli.catalog, cli.json, cli.quiet);
    let result = match cli.command {
        Command::Library(LibraryCommand::Add { folders, scan }) => {
            cli::library_add(&ctx, &folders, scan)
        }
        Command::Library(LibraryCommand::Remove { folder }) => cli::library_remove(&ctx, &folder),
        Command::Library(LibraryCommand::List) => cli::library_list(&ctx),
        Command::Scan(a) => cli::scan(&ctx, &a.roots, a.include_hidden, a.threads),
        Command::Photos(PhotosCommand::List {
            tagged,
            untagged,
            missing,
            limit,
        }) => {
            let tagged = if tagged {
                Some(true)
            } else if untagged {
                Some(false)
            } else {
                None
            };
            cli::photos_list(&ctx, tagged, missing, limit)
        }
        Command::Show { path } => cli::show(&ctx, &path),
        Command::Thumbnail { path, size } => cli::thumbnail(
            &ctx,
            &path,
            match size {
                ThumbSize::Grid => pinpoint::library::ThumbnailSize::Grid,
                ThumbSize::Preview => pinpoint::library::ThumbnailSize::Preview,
            },
        ),
        Command::Check => cli::check(&ctx),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
