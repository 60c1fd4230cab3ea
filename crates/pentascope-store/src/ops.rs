//! Operations over records and pixels together, shared by the HTTP handlers
//! and the job runners so that a synchronous request and a background job
//! do exactly the same thing.

use std::sync::Arc;

use pentascope_core::{CoreError, DType, Shape5};
use serde_json::{json, Value};

use crate::analysis::{pca, ScoresReader};
use crate::db::MetadataRepo;
use crate::error::StoreError;
use crate::pixels::{PixelReader, PixelStore};
use crate::record::{now_rfc3339, ImageDetails, ImageId, ImageKind, ImageRecord};

/// A published image by its id string (`image_<n>`), or `NotFound`.
pub async fn find_image(repo: &dyn MetadataRepo, id: &str) -> Result<ImageRecord, StoreError> {
    let parsed: ImageId = id
        .parse()
        .map_err(|_| StoreError::NotFound(format!("{id:?}")))?;
    repo.get(parsed)
        .await?
        .ok_or_else(|| StoreError::NotFound(parsed.to_string()))
}

/// Opens an image's pixels for reading (blocking): stored images from the
/// pixel store, PCA score images as a projection of their source.
pub fn open_image(
    pixels: &dyn PixelStore,
    record: &ImageRecord,
) -> Result<Arc<dyn PixelReader>, StoreError> {
    match (&record.details.pca, record.source_image_id) {
        (Some(model), Some(source)) => Ok(Arc::new(ScoresReader::new(
            pixels.open(source)?,
            model.clone(),
        ))),
        _ => pixels.open(record.id),
    }
}

/// Checks that `components` principal components can be computed for
/// `source`, with a message that names the valid range.
pub fn check_pca(source: &ImageRecord, components: u64) -> Result<(), StoreError> {
    let c = source.shape.c;
    if c < 2 {
        return Err(CoreError::InvalidRequest(format!(
            "PCA needs at least 2 channels (channels are the features, pixels the samples); \
             {} has 1 channel",
            source.id
        ))
        .into());
    }
    if components < 1 || components > c {
        return Err(CoreError::InvalidRequest(format!(
            "components must be between 1 and {c} (the number of channels of {}), got {components}",
            source.id
        ))
        .into());
    }
    Ok(())
}

/// PCA of `source` with `components` components, as scikit-learn's `PCA`
/// on the pixels × channels matrix; registers the (virtual) scores image and
/// returns the response document of `POST /analyze`. `progress` is told the
/// fraction done.
pub async fn run_pca(
    repo: &dyn MetadataRepo,
    pixels: Arc<dyn PixelStore>,
    source: &ImageRecord,
    components: u64,
    inline_cap: u64,
    progress: Arc<dyn Fn(f64) + Send + Sync>,
) -> Result<Value, StoreError> {
    check_pca(source, components)?;
    let k = components as usize;
    let s = source.shape;
    let shape = Shape5::new(s.t, s.z, components, s.y, s.x);
    let source_record = source.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let reader = open_image(&*pixels, &source_record)?;
        pca(&*reader, k, inline_cap, &*progress)
    })
    .await
    .map_err(|e| StoreError::Pixels(format!("PCA task failed: {e}")))??;
    let scores_id = repo.reserve(ImageKind::PcaScores).await?;
    let record = ImageRecord {
        id: scores_id,
        kind: ImageKind::PcaScores,
        source_image_id: Some(source.id),
        original_filename: source.original_filename.clone(),
        byte_size: 0,
        created_at: now_rfc3339(),
        dtype: DType::F32,
        shape,
        flavour: pentascope_core::tiff::Flavour::Plain,
        details: ImageDetails {
            source_axes: "TZCYX".into(),
            channel_names: (1..=k).map(|i| format!("PC{i}")).collect(),
            physical_sizes: source.details.physical_sizes.clone(),
            warnings: Vec::new(),
            chunk_shape: [0; 5],
            pca: Some(outcome.model.clone()),
        },
        statistics: outcome.score_statistics,
    };
    if let Err(e) = repo.publish(&record).await {
        repo.discard(scores_id).await?;
        return Err(e);
    }
    let model = outcome.model;
    let n_values = shape.pixels_per_channel() * components;
    let (pca_result, omitted) = match outcome.inline_scores {
        Some(scores) => (
            Value::Array(scores.chunks(k).map(|row| json!(row)).collect()),
            Value::Null,
        ),
        None => (
            Value::Null,
            json!(format!(
                "{n_values} score values exceed the inline limit of {inline_cap}; fetch them \
                 from image {scores_id} (/slice?image_id={scores_id}&channel=0&format=npy)"
            )),
        ),
    };
    Ok(json!({
        "image_id": source.id,
        "n_components": k,
        "n_samples": model.n_samples,
        "explained_variance": model.explained_variance,
        "explained_variance_ratio": model.explained_variance_ratio,
        "components": model.components,
        "mean": model.mean,
        "scores_image_id": scores_id,
        "pca_result": pca_result,
        "pca_result_omitted": omitted,
        "pca_result_layout": "one row per pixel in T, Z, Y, X order; one column per component",
        "inline_limit": inline_cap,
    }))
}
