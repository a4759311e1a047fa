//! Turning photos into descriptors: decode (in parallel, upright), fit to the input size, batch
//! images of equal size, run the network. Decoding runs on its own threads while the network
//! works, through a bounded channel, so memory stays bounded whatever the number of photos.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::content_cache::{device_kind, file_hash, CacheKey, ContentCache};
use super::preprocess::{fit_input, to_tensor};
use super::{LoadedModel, Stage};
use crate::error::{Error, Result};
use crate::library::decode::decode_upright;
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

/// One image to describe.
#[derive(Debug, Clone)]
pub struct DescribeJob {
    pub path: PathBuf,
    /// EXIF orientation when already known (from the catalog); read from the file otherwise.
    pub orientation: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct DescribeOptions {
    pub long_side: u32,
    pub stage: Stage,
    /// Most images per forward pass.
    pub batch_size: usize,
    /// Decoder threads.
    pub decoders: usize,
}

impl Default for DescribeOptions {
    fn default() -> Self {
        DescribeOptions {
            long_side: super::preprocess::DEFAULT_LONG_SIDE,
            stage: Stage::Descriptor,
            batch_size: 4,
            decoders: 1,
        }
    }
}

/// Decodes one image and fits it to the network input.
pub fn load_input(path: &Path, orientation: Option<u8>, long_side: u32) -> Result<RgbImage> {
    let img = decode_upright(path, orientation)?;
    Ok(fit_input(&img.to_rgb8(), long_side))
}

/// Stacks same-size images into one [B, 3, H, W] tensor.
pub fn batch_tensor(images: &[&RgbImage], device: &Device) -> Result<Tensor> {
    let ts = images
        .iter()
        .map(|i| to_tensor(i, device))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&ts, 0)?)
}

struct Decoded {
    index: usize,
    image: Result<RgbImage>,
}

/// Describes `jobs`, calling `on_result(index, result)` for each as soon as it is known (in no
/// particular order). Stops early, with `Err(Cancelled)`, when `cancel` is set. With a content
/// cache (`$PINPOINT_CONTENT_CACHE`), images described before with the same model and settings
/// are answered from it and only the others run through the network.
pub fn describe_stream(
    model: &LoadedModel,
    jobs: &[DescribeJob],
    opts: &DescribeOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
    mut on_result: impl FnMut(usize, Result<Vec<f32>>) -> Result<()>,
) -> Result<()> {
    let mut meter = ProgressMeter::new(progress, "describe");
    meter.stage("describing", Some(jobs.len() as u64));
    let Some(cache) = ContentCache::from_env() else {
        return describe_uncached(model, jobs, opts, &mut meter, cancel, &mut on_result);
    };
    let kind = match opts.stage {
        Stage::NetVlad => "netvlad",
        Stage::Descriptor => "descriptor",
    };
    let device = device_kind(&model.device);
    // A file that cannot be hashed is described (and fails) as without a cache.
    let mut keyed: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    let mut missing: Vec<usize> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        cancel.check()?;
        let content = file_hash(&job.path).ok();
        let settings = describe_settings(opts.long_side, job.orientation);
        let hit = content.as_deref().and_then(|c| {
            cache.get(&CacheKey {
                kind,
                model_hash: &model.hash,
                device,
                settings: settings.clone(),
                content: c,
            })
        });
        match hit {
            Some(v) => {
                meter.advance(1);
                on_result(i, Ok(v))?;
            }
            None => missing.push(i),
        }
        keyed.push(content);
    }
    let sub: Vec<DescribeJob> = missing.iter().map(|&i| jobs[i].clone()).collect();
    describe_uncached(model, &sub, opts, &mut meter, cancel, &mut |j, r| {
        let i = missing[j];
        if let (Ok(v), Some(content)) = (&r, &keyed[i]) {
            cache.put(
                &CacheKey {
                    kind,
                    model_hash: &model.hash,
                    device,
                    settings: describe_settings(opts.long_side, jobs[i].orientation),
                    content,
                },
                v,
            );
        }
        on_result(i, r)
    })
}

/// The settings a descriptor depends on besides the model and the file.
fn describe_settings(long_side: u32, orientation: Option<u8>) -> String {
    format!("long_side={long_side};orientation={orientation:?}")
}

fn describe_uncached(
    model: &LoadedModel,
    jobs: &[DescribeJob],
    opts: &DescribeOptions,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
    on_result: &mut dyn FnMut(usize, Result<Vec<f32>>) -> Result<()>,
) -> Result<()> {
    let batch_size = opts.batch_size.max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Decoded>(batch_size * 2);
    let long_side = opts.long_side;
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..opts.decoders.max(1) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= jobs.len() || cancel.is_cancelled() {
                    return;
                }
                let image = load_input(&jobs[i].path, jobs[i].orientation, long_side);
                if tx.send(Decoded { index: i, image }).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        // Images wait here, grouped by size, until a batch is full or decoding ends.
        let mut pending: Vec<(usize, RgbImage)> = Vec::new();
        let run = |group: Vec<(usize, RgbImage)>,
                   meter: &mut ProgressMeter,
                   on_result: &mut dyn FnMut(usize, Result<Vec<f32>>) -> Result<()>|
         -> Result<()> {
            let refs: Vec<&RgbImage> = group.iter().map(|(_, img)| img).collect();
            let outcome =
                batch_tensor(&refs, &model.device).and_then(|t| model.run(&t, opts.stage));
            match outcome {
                Ok(rows) => {
                    for ((index, _), row) in group.iter().zip(rows) {
                        on_result(*index, Ok(row))?;
                    }
                }
                Err(e) => {
                    for (index, _) in &group {
                        meter.error();
                        on_result(
                            *index,
                            Err(Error::Model(format!(
                                "{}: {e}",
                                jobs[*index].path.display()
                            ))),
                        )?;
                    }
                }
            }
            meter.advance(group.len() as u64);
            Ok(())
        };
        for decoded in rx.iter() {
            if cancel.is_cancelled() {
                break;
            }
            match decoded.image {
                Ok(img) => {
                    pending.push((decoded.index, img));
                    let size = pending.last().map(|(_, i)| i.dimensions()).unwrap();
                    let same: Vec<usize> = pending
                        .iter()
                        .enumerate()
                        .filter(|(_, (_, i))| i.dimensions() == size)
                        .map(|(k, _)| k)
                        .collect();
                    if same.len() >= batch_size {
                        let group = take_indices(&mut pending, &same);
                        run(group, meter, on_result)?;
                    } else if pending.len() > batch_size * 4 {
                        // Too many sizes waiting: run the largest group to bound memory.
                        let group = largest_group(&mut pending);
                        run(group, meter, on_result)?;
                    }
                }
                Err(e) => {
                    meter.error();
                    meter.advance(1);
                    on_result(decoded.index, Err(e))?;
                }
            }
        }
        while !pending.is_empty() && !cancel.is_cancelled() {
            let group = largest_group(&mut pending);
            for chunk in chunk_group(group, batch_size) {
                run(chunk, meter, on_result)?;
            }
        }
        meter.finish();
        cancel.check()
    })
}

fn take_indices(pending: &mut Vec<(usize, RgbImage)>, indices: &[usize]) -> Vec<(usize, RgbImage)> {
    let mut out = Vec::with_capacity(indices.len());
    for &k in indices.iter().rev() {
        out.push(pending.swap_remove(k));
    }
    out.reverse();
    out
}

fn largest_group(pending: &mut Vec<(usize, RgbImage)>) -> Vec<(usize, RgbImage)> {
    let mut counts: std::collections::HashMap<(u32, u32), usize> = Default::default();
    for (_, i) in pending.iter() {
        *counts.entry(i.dimensions()).or_default() += 1;
    }
    let size = counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(s, _)| s)
        .unwrap();
    let indices: Vec<usize> = pending
        .iter()
        .enumerate()
        .filter(|(_, (_, i))| i.dimensions() == size)
        .map(|(k, _)| k)
        .collect();
    take_indices(pending, &indices)
}

fn chunk_group(group: Vec<(usize, RgbImage)>, size: usize) -> Vec<Vec<(usize, RgbImage)>> {
    let mut out = Vec::new();
    let mut it = group.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// Describes images and returns the results in input order.
pub fn describe_paths(
    model: &LoadedModel,
    jobs: &[DescribeJob],
    opts: &DescribeOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Vec<Result<Vec<f32>>>> {
    let mut out: Vec<Option<Result<Vec<f32>>>> = (0..jobs.len()).map(|_| None).collect();
    describe_stream(model, jobs, opts, progress, cancel, |i, r| {
        out[i] = Some(r);
        Ok(())
    })?;
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::Cancelled)))
        .collect())
}

/// What describing the catalog did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CatalogDescribeReport {
    pub model: String,
    pub described: u64,
    pub failed: Vec<crate::library::FileProblem>,
    pub already_described: u64,
    pub cancelled: bool,
    pub seconds: f64,
}

/// Describes every present catalog photo that lacks a current descriptor for `model`, storing
/// results in batches (a stopped run keeps what it computed; the next run does the rest).
pub fn describe_catalog(
    catalog: &mut crate::catalog::Catalog,
    model: &LoadedModel,
    opts: &DescribeOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<CatalogDescribeReport> {
    let started = std::time::Instant::now();
    let card = serde_json::to_string(&model.card).expect("card serialises");
    catalog.register_model(
        &model.hash,
        &model.card.name,
        &model.card.version,
        model.net.descriptor_dim(),
        &card,
    )?;
    let targets = catalog.photos_to_describe(&model.hash)?;
    let before = catalog.descriptor_counts(&model.hash)?;
    let jobs: Vec<DescribeJob> = targets
        .iter()
        .map(|t| DescribeJob {
            path: t.path.clone(),
            orientation: t.orientation,
        })
        .collect();
    let mut report = CatalogDescribeReport {
        model: model.hash.clone(),
        already_described: before.described,
        ..Default::default()
    };
    let mut batch: Vec<(
        crate::catalog::DescribeTarget,
        std::result::Result<Vec<f32>, String>,
    )> = Vec::new();
    let outcome = describe_stream(
        model,
        &jobs,
        &DescribeOptions {
            stage: Stage::Descriptor,
            ..opts.clone()
        },
        progress,
        cancel,
        |i, r| {
            let r = r.map_err(|e| e.to_string());
            match &r {
                Ok(_) => report.described += 1,
                Err(reason) => report.failed.push(crate::library::FileProblem {
                    path: targets[i].path.clone(),
                    reason: reason.clone(),
                }),
            }
            batch.push((targets[i].clone(), r));
            if batch.len() >= 16 {
                catalog.store_descriptions(&model.hash, &batch)?;
                batch.clear();
            }
            Ok(())
        },
    );
    catalog.store_descriptions(&model.hash, &batch)?;
    report.seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => Ok(report),
        Err(Error::Cancelled) => {
            report.cancelled = true;
            Ok(report)
        }
        Err(e) => Err(e),
    }
}
