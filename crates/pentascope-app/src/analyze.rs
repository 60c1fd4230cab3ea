//! PCA of an image: pixels are samples, channels are features, as
//! scikit-learn's `PCA` on the (T·Z·Y·X) × C matrix. The scores become a
//! derived float32 image that is virtual: its record holds the model and its
//! planes are projected from the source on request.

use std::sync::Arc;

use pentascope_core::{CoreError, DType, Limit, Shape5};
use pentascope_passes::analysis::{pca, PcaOutcome};
use pentascope_passes::cancel::Cancel;
use pentascope_store::pixels::ArrayLayout;
use pentascope_store::record::{now_rfc3339, Catalogue, ImageDetails};
use pentascope_store::{ImageId, ImageKind, ImageRecord, StoreError};
use serde::{Deserialize, Serialize};

use crate::access::Caller;
use crate::app::{blocking, App};
use crate::error::AppError;
use crate::images::open_pixels;
use crate::Progress;
use pentascope_store::records::Scope;

/// Components computed when a request names none (the original service's
/// default), capped at the image's channels.
pub const DEFAULT_COMPONENTS: u64 = 3;

/// The arguments of a PCA, as `POST /analyze` and the `heavy_pca` task take
/// them (`components` is accepted for `n_components`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcaArgs {
    /// The source image, `image_<n>`.
    pub image_id: String,
    /// Principal components to compute (default [`DEFAULT_COMPONENTS`],
    /// at most the image's channels).
    #[serde(default, alias = "components", skip_serializing_if = "Option::is_none")]
    pub n_components: Option<u64>,
}

impl PcaArgs {
    /// The components to compute for an image of `channels` channels.
    pub fn components_for(&self, channels: u64) -> u64 {
        self.n_components
            .unwrap_or_else(|| DEFAULT_COMPONENTS.min(channels))
    }
}

/// The outcome of a PCA, as `POST /analyze` answers it: a fitted PCA with
/// scikit-learn's attribute names and conventions (C = channels of the
/// source image, k = components kept).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "AnalyzeResponse")]
pub struct PcaResult {
    /// The source image.
    pub image_id: ImageId,
    /// Components computed.
    pub n_components: usize,
    /// Pixels (samples) analysed.
    pub n_samples: u64,
    /// Variance along each component (ddof = 1).
    pub explained_variance: Vec<f64>,
    /// Share of the total variance of each component.
    pub explained_variance_ratio: Vec<f64>,
    /// The components, one row of C loadings each.
    pub components: Vec<Vec<f64>>,
    /// Per-channel mean.
    pub mean: Vec<f64>,
    /// The derived image holding the scores.
    pub scores_image_id: ImageId,
    /// The scores inline, one row per pixel, when within `inline_limit`.
    pub pca_result: Option<Vec<Vec<f32>>>,
    /// Why `pca_result` is absent.
    pub pca_result_omitted: Option<String>,
    /// How `pca_result` is laid out.
    pub pca_result_layout: String,
    /// Most score values returned inline.
    pub inline_limit: u64,
    /// How the number of components was chosen when the request named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components_defaulted: Option<String>,
}

/// Checks that `components` principal components can be computed for
/// `source`, with a message that names the valid range.
pub fn check_pca(source: &ImageRecord, components: u64) -> Result<(), AppError> {
    // scores are computed from their source when read, not stored: scores
    // of scores would have nothing stored to read (and are the scores
    // again, rotated)
    if let (Some(_), Some(of)) = (&source.details.pca, source.source_image_id) {
        return Err(AppError::InvalidArguments(format!(
            "{} holds the PCA scores of {of}: analyse {of} instead",
            source.id
        )));
    }
    let c = source.shape.c;
    if c < 2 {
        return Err(AppError::InvalidArguments(format!(
            "PCA needs at least 2 channels (channels are the features, pixels the samples); \
             {} has 1 channel",
            source.id
        )));
    }
    if components < 1 || components > c {
        return Err(AppError::InvalidArguments(format!(
            "components must be between 1 and {c} (the number of channels of {}), got {components}",
            source.id
        )));
    }
    Ok(())
}

impl App {
    /// The source image of a PCA, checked: it exists and has enough
    /// channels for the components asked for.
    pub async fn pca_source(
        &self,
        caller: &Caller,
        args: &PcaArgs,
    ) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Write)?;
        let source = self.image(caller, &args.image_id).await?;
        let max = self.config.limits.max_channels;
        if source.shape.c > max {
            return Err(CoreError::too_large(
                Limit::Reader(pentascope_tiff::Limit::MaxChannels),
                format!(
                    "PCA of {} channels needs a {c}×{c} covariance per thread; the limit is \
                     {max} channels",
                    source.shape.c,
                    c = source.shape.c
                ),
            )
            .into());
        }
        check_pca(&source, args.components_for(source.shape.c))?;
        Ok(source)
    }

    /// Runs a PCA and registers its (virtual) scores image, with the scores
    /// inline up to the configured cap. It stops when the caller stops
    /// waiting or the source image is deleted.
    pub async fn analyze(
        self: &Arc<Self>,
        caller: &Caller,
        args: &PcaArgs,
        progress: Progress,
    ) -> Result<PcaResult, AppError> {
        self.analyze_inline(caller, args, progress, self.config.inline_scores_cap)
            .await
    }

    /// [`App::analyze`] with the scores inline up to `inline_cap` values (0:
    /// never, for callers that stream them from the scores image).
    pub async fn analyze_inline(
        self: &Arc<Self>,
        caller: &Caller,
        args: &PcaArgs,
        progress: Progress,
        inline_cap: u64,
    ) -> Result<PcaResult, AppError> {
        let (app, args, cancel) = (self.clone(), args.clone(), Cancel::new());
        let (caller, observed) = (caller.clone(), cancel.clone());
        App::detached(&cancel, async move {
            app.analyze_until_cancelled(&caller, &args, progress, inline_cap, observed)
                .await
        })
        .await
    }

    async fn analyze_until_cancelled(
        &self,
        caller: &Caller,
        args: &PcaArgs,
        progress: Progress,
        inline_cap: u64,
        cancel: Cancel,
    ) -> Result<PcaResult, AppError> {
        let source = self.pca_source(caller, args).await?;
        let _reading = self.reading(source.id, &cancel);
        let k = args.components_for(source.shape.c) as usize;
        let (pixels, reading_record) = (self.pixels.clone(), source.clone());
        let part_pixels = self.config.part_pixels;
        let computed = blocking(move || {
            let reader = open_pixels(&*pixels, &reading_record)?;
            Ok(pca(
                &*reader,
                k,
                inline_cap,
                part_pixels,
                &*progress,
                &cancel,
            )?)
        })
        .await;
        match computed {
            Ok(outcome) => self.publish_pca(&source, args, outcome, inline_cap).await,
            Err(e) => Err(self.unless_deleted(source.id, e).await),
        }
    }

    /// Registers the (virtual) scores image of a finished PCA of `source`
    /// and gives the answer, with the scores inline if `outcome` has them.
    pub(crate) async fn publish_pca(
        &self,
        source: &ImageRecord,
        args: &PcaArgs,
        outcome: PcaOutcome,
        inline_cap: u64,
    ) -> Result<PcaResult, AppError> {
        let components = args.components_for(source.shape.c);
        let k = components as usize;
        let s = source.shape;
        let shape = Shape5::new(s.t, s.z, components, s.y, s.x);
        let scores_id = self.images.reserve(ImageKind::PcaScores).await?;
        let record = ImageRecord {
            id: scores_id,
            kind: ImageKind::PcaScores,
            source_image_id: Some(source.id),
            original_filename: source.original_filename.clone(),
            byte_size: 0,
            created_at: now_rfc3339(),
            dtype: DType::F32,
            shape,
            flavour: pentascope_tiff::Flavour::Plain,
            details: ImageDetails {
                source_axes: "TZCYX".into(),
                channel_names: (1..=k).map(|i| format!("PC{i}")).collect(),
                physical_sizes: source.details.physical_sizes.clone(),
                acquisition: Default::default(),
                rendering: Vec::new(),
                warnings: Vec::new(),
                // the chunk grid its full resolution is served in (`/zarr`)
                chunk_shape: {
                    let [rows, columns] =
                        ArrayLayout::for_image(shape, DType::F32).level_subchunk(0);
                    [1, 1, 1, rows, columns]
                },
                pca: Some(outcome.model.clone()),
                series: None,
                levels_from_file: Vec::new(),
                segmented: None,
            },
            statistics: outcome.score_statistics,
            // derived images belong to whoever owns their source
            owner: source.owner.clone(),
            public: source.public,
            catalogue: Catalogue::named(format!("{} (PCA scores)", source.catalogue.name)),
        };
        if let Err(e) = self.images.publish(&record).await {
            self.images.discard(scores_id).await?;
            return Err(e.into());
        }
        // a delete of the source that raced the analysis must not leave an
        // orphaned scores image behind
        if self.images.get(source.id).await?.is_none() {
            self.images.delete(scores_id).await?;
            return Err(StoreError::NotFound(source.id.to_string()).into());
        }
        let model = outcome.model;
        let n_values = shape.pixels_per_channel() * components;
        let omitted = outcome.inline_scores.is_none().then(|| {
            format!(
                "{n_values} score values exceed the inline limit of {inline_cap}; download \
                 them as image {scores_id} (/images/{scores_id}/download?format=npy, \
                 TZCYX with the components as channels) or ask for \"pca_result\": \"full\""
            )
        });
        Ok(PcaResult {
            image_id: source.id,
            n_components: k,
            n_samples: model.n_samples,
            explained_variance: model.explained_variance,
            explained_variance_ratio: model.explained_variance_ratio,
            components: model.components,
            mean: model.mean,
            scores_image_id: scores_id,
            pca_result: outcome
                .inline_scores
                .map(|scores| scores.chunks(k).map(<[f32]>::to_vec).collect()),
            pca_result_omitted: omitted,
            pca_result_layout: "one row per pixel in T, Z, Y, X order; one column per component"
                .into(),
            inline_limit: inline_cap,
            components_defaulted: args.n_components.is_none().then(|| {
                format!(
                    "components not given: {components}, the original service's default of \
                     {DEFAULT_COMPONENTS} capped at the image's {} channels",
                    source.shape.c
                )
            }),
        })
    }
}
