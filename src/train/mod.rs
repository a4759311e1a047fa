//! Fine-tuning on places the user already knows (Kim, Dunn, Frahm, CVPR 2017): GPS tags or place
//! labels are the only supervision. Triplets are mined within each batch, the loss is the margin
//! loss on descriptor similarities (symmetric in query and positive), the optimiser SGD with
//! momentum and weight decay, CRN at 10x the learning rate. A new model is adopted only when
//! held-out recall says it is better.
//!
//! Training runs over features that the frozen backbone computes once per image (conv5_3, or pool4
//! when conv5 trains), which is what makes CPU training practical.
//!
//! - `options`: what a run is asked to do; `network`: CRN + NetVLAD (+ conv5) as variables;
//!   `step`: the batch loss and one update; `run`: preparing a run, the training loop with its
//!   checkpoints, the report; `data`: the places and frozen features trained on; `verify`:
//!   geometric verification of the positives; `judge`: recall before and after; `adopt`: writing
//!   the better model and making it the catalog's.
//! - `mining`, `split`, `budget`, `checkpoint`, `optim`: triplets, the catalog's
//!   held-out split, the training size, saved state, the optimisers (local-feature matching is
//!   `crate::geometry`, shared with `locate`).

pub mod budget;
pub mod checkpoint;
pub mod mining;
pub mod optim;
pub mod split;

mod adopt;
mod data;
mod judge;
mod network;
mod options;
mod run;
mod step;
mod verify;

pub use network::TrainableAggregation;
pub use options::{OptimizerChoice, Stage, TrainOptions};
pub use run::{train, train_on_catalog, train_on_dataset, TrainReport};
pub use step::{batch_loss, training_step, StepData};
pub use verify::VerificationSummary;
