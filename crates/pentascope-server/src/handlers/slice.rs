//! `GET /slice`: one plane as an 8-bit windowed PNG, a 16-bit raw PNG or
//! the exact samples as `.npy`.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use pentascope_core::render::{
    encode_npy, encode_png_gray16, encode_png_gray8, window_to_u8, Window,
};
use pentascope_core::{dispatch_dtype, PlaneIndex, Sample};
use pentascope_store::analysis::read_plane;
use pentascope_store::pixels::PixelReader;

use crate::cache::SliceKey;
use crate::error::ApiError;
use crate::handlers::params::{index, number, required, Params};
use crate::state::{blocking, AppState};
use pentascope_store::ops::open_image;

/// What the client asked the plane to become.
#[derive(Debug, Clone, Copy)]
enum Rendering {
    Png8(Window),
    Png16,
    Npy,
}

/// `GET /slice?image_id=&z=&time=&channel=[&min=&max=][&bits=16][&format=npy]`.
pub async fn slice(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let image_id = required(&params, "image_id")?;
    let plane = PlaneIndex::new(
        index(&params, "time")?.unwrap_or(0),
        index(&params, "z")?.unwrap_or(0),
        index(&params, "channel")?.unwrap_or(0),
    );
    let (low, high) = (number(&params, "min")?, number(&params, "max")?);
    let format = params.get("format").map(String::as_str).unwrap_or("png");
    let bits = params.get("bits").map(String::as_str).unwrap_or("8");
    let record = state.record(image_id).await?;
    record.shape.check_plane(plane)?;
    let rendering = match (format, bits) {
        ("npy", _) => Rendering::Npy,
        ("png", "16") => Rendering::Png16,
        ("png", "8") => {
            let stats = &record.statistics[plane.c as usize];
            Rendering::Png8(Window {
                low: low.unwrap_or(stats.display_min),
                high: high.unwrap_or(stats.display_max),
            })
        }
        ("png", other) => {
            return Err(ApiError::bad_request(format!(
                "bits must be 8 or 16, got {other:?}"
            )))
        }
        (other, _) => {
            return Err(ApiError::bad_request(format!(
                "format must be png or npy, got {other:?}"
            )))
        }
    };
    let id = record.id;
    let key = SliceKey {
        id,
        plane,
        rendering: match rendering {
            Rendering::Npy => "npy".into(),
            Rendering::Png16 => "png16".into(),
            Rendering::Png8(w) => format!("png8:{:x}:{:x}", w.low.to_bits(), w.high.to_bits()),
        },
    };
    let content_type = match rendering {
        Rendering::Npy => "application/octet-stream",
        _ => "image/png",
    };
    let body = match state.caches.slice(&key) {
        Some(body) => body,
        None => {
            let (pixels, caches) = (state.pixels.clone(), state.caches.clone());
            let body = blocking(move || {
                let reader = caches.reader(id, || open_image(&*pixels, &record))?;
                let dtype = reader.layout().dtype;
                dispatch_dtype!(dtype, T => render::<T>(&*reader, plane, rendering))
            })
            .await?;
            let body = bytes::Bytes::from(body);
            state.caches.keep_slice(key, body.clone());
            body
        }
    };
    let filename = match rendering {
        Rendering::Npy => format!("{id}_t{}_z{}_c{}.npy", plane.t, plane.z, plane.c),
        _ => format!("{id}_t{}_z{}_c{}.png", plane.t, plane.z, plane.c),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{filename}\""),
        )
        .body(Body::from(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn render<T: Sample>(
    reader: &dyn PixelReader,
    plane: PlaneIndex,
    rendering: Rendering,
) -> Result<Vec<u8>, ApiError> {
    let shape = reader.layout().shape;
    let samples = read_plane::<T>(reader, plane)?;
    let (w, h) = (shape.x as u32, shape.y as u32);
    Ok(match rendering {
        Rendering::Npy => encode_npy(&[shape.y, shape.x], &samples),
        Rendering::Png16 => encode_png_gray16(w, h, &samples)?,
        Rendering::Png8(window) => {
            let mut gray = Vec::new();
            window_to_u8(&samples, window, &mut gray);
            encode_png_gray8(w, h, &gray)?
        }
    })
}
