"""Decoding DICOM pixel data to Hounsfield units.

``HU = stored * RescaleSlope + RescaleIntercept``; stored values equal to the pixel padding
value (or within PixelPaddingValue..PixelPaddingRangeLimit) become -1024 HU. Compressed
transfer syntaxes are decoded by the pydicom plugins (pylibjpeg, pyjpegls, gdcm) found at run
time; a missing plugin raises :class:`PixelDataError` naming the syntax and the fix.

A decoded slice is checked for plausibility (:func:`check_plausible_hu`): corrupt or
mis-declared compressed data typically decodes to noise spanning the whole int16 range.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pvp_plan.errors import InputError, PixelDataError
from pvp_plan.io.dicom_scan import is_dicom_part10

logger = logging.getLogger(__name__)

CODEC_FIX = 'install the DICOM codecs: pip install "pvp-plan[dicom-codecs]"'
#: HU written for padding (outside the reconstruction circle).
PADDING_HU = -1024
#: Below this (HU) no scanner writes a CT number: air is -1000, outside-FOV values reach -3024, and lossy
#: compression rings around those by a few hundred HU at most.
IMPLAUSIBLE_LOW_HU = -10000
#: Fraction of a slice's pixels allowed below IMPLAUSIBLE_LOW_HU (besides one constant padding value).
IMPLAUSIBLE_FRACTION = 0.005


def rescale_is_integral(slope: float, intercept: float) -> bool:
    """True when ``stored * slope + intercept`` is an integer for every integer ``stored``."""
    return float(slope).is_integer() and float(intercept).is_integer()


def _decoder_check(ds: Dataset, path: Path) -> None:
    tsyntax = UID(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2.1")) if hasattr(ds, "file_meta") \
        else UID("1.2.840.10008.1.2.1")
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise PixelDataError(f"{path}: transfer syntax {tsyntax.name} ({tsyntax}) has no pixel decoder; "
                             f"{CODEC_FIX}, or convert the series to uncompressed DICOM") from exc
    if not decoder.is_available:
        raise PixelDataError(f"{path}: pixel data is compressed as {tsyntax.name} ({tsyntax}) and no decoder "
                             f"plugin for it is installed; {CODEC_FIX}")


def decode_stored(ds: Dataset, path: Path) -> np.ndarray:
    """The stored pixel values (frames, rows, columns) or (rows, columns), undecoded rescale.

    Raises
    ------
    PixelDataError
        No pixel data, missing codec, or data that cannot be decoded.
    """
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise PixelDataError(f"{path}: no pixel data in the file")
    _decoder_check(ds, path)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom/plugins raise many exception types for bad data
        raise PixelDataError(f"{path}: pixel data cannot be decoded ({type(exc).__name__}: {str(exc)[:160]}); "
                             "the file is corrupt or truncated: re-export it from the PACS") from exc
    if ds.get("SamplesPerPixel", 1) != 1:
        raise PixelDataError(f"{path}: {ds.SamplesPerPixel} samples per pixel (colour image); a CT image has one")
    return arr


def padding_mask(stored: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """Pixels equal to PixelPaddingValue (or within it and PixelPaddingRangeLimit); None without padding."""
    pad = ds.get("PixelPaddingValue")
    if pad is None or not isinstance(pad, int | float):
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    if isinstance(limit, int | float):
        lo, hi = min(pad, limit), max(pad, limit)
        return (stored >= lo) & (stored <= hi)
    return stored == pad


def to_hu(stored: np.ndarray, *, slope: float, intercept: float, padding: np.ndarray | None = None,
          out_dtype: np.dtype | None = None) -> np.ndarray:
    """Apply the modality rescale; int16 when integral (clipped to the int16 range), else float32.

    Parameters
    ----------
    stored : np.ndarray
        Stored pixel values.
    slope, intercept : float
        RescaleSlope and RescaleIntercept (HU per stored unit, HU).
    padding : np.ndarray of bool, optional
        Padding pixels, set to :data:`PADDING_HU`.
    out_dtype : numpy dtype, optional
        Force the output type (a series with mixed rescales uses float32 throughout).
    """
    integral = rescale_is_integral(slope, intercept)
    dtype = np.dtype(out_dtype) if out_dtype is not None else np.dtype(np.int16 if integral else np.float32)
    if dtype == np.int16:
        if slope == 1 and stored.dtype == np.int16 and -32768 <= intercept <= 0 and \
                int(stored.min(initial=0)) + int(intercept) >= -32768:
            hu = stored + np.int16(intercept)
        else:
            hu = np.clip(stored.astype(np.int32) * int(slope) + int(intercept), -32768, 32767).astype(np.int16)
    else:
        hu = (stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)).astype(dtype)
    if padding is not None and padding.any():
        hu[padding] = PADDING_HU
    return hu


def check_plausible_hu(hu: np.ndarray, *, what: str) -> None:
    """Refuse a decoded slice whose values cannot be CT numbers (corrupt or mis-declared data).

    More than :data:`IMPLAUSIBLE_FRACTION` of the pixels below :data:`IMPLAUSIBLE_LOW_HU`, not
    counting the most frequent such value (undeclared padding is one constant), means the
    decoder produced noise.
    """
    low = hu[hu < IMPLAUSIBLE_LOW_HU]
    if low.size <= IMPLAUSIBLE_FRACTION * hu.size:
        return
    values, counts = np.unique(low, return_counts=True)
    n_bad = low.size - int(counts.max())
    if n_bad > IMPLAUSIBLE_FRACTION * hu.size:
        raise PixelDataError(
            f"{what}: decoded pixel values are not plausible CT numbers ({100 * n_bad / hu.size:.1f}% of pixels "
            f"below {IMPLAUSIBLE_LOW_HU} HU, down to {float(values[0]):.0f}); the compressed pixel data is corrupt "
            "or its header (bits stored, pixel representation) does not match it: re-export the series"
        )


def rescale_of(ds: Dataset) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of a single-frame dataset (defaults 1, 0)."""
    slope = ds.get("RescaleSlope", 1)
    intercept = ds.get("RescaleIntercept", 0)
    return float(slope if slope not in (None, "") else 1), float(intercept if intercept not in (None, "") else 0)


def read_dataset(path: Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Read one DICOM file, wrapping pydicom's exceptions into :class:`InputError`.

    Files without the Part 10 preamble (raw datasets from old exporters) are read with ``force``.
    """
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=not is_dicom_part10(path))
    except InvalidDicomError as exc:
        raise InputError(f"{path}: not a DICOM file ({exc}); pass a DICOM folder or file, a DICOMDIR, "
                         "NIfTI, NRRD or MHA/MHD") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}); check permissions and the disk") from exc
    except Exception as exc:
        raise InputError(f"{path}: DICOM file cannot be parsed ({type(exc).__name__}: {str(exc)[:160]}); "
                         "the file is corrupt or truncated") from exc
    _set_missing_transfer_syntax(ds)
    return ds


def _set_missing_transfer_syntax(ds: Dataset) -> None:
    """A raw dataset (no file meta) gets the transfer syntax it was read with, so pixels can decode."""
    if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
        return
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                      ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def slice_hu(ds: Dataset, path: Path, *, out_dtype: np.dtype | None = None) -> np.ndarray:
    """HU of a single-frame DICOM image dataset, shape (rows, columns).

    Raises
    ------
    PixelDataError
        Undecodable, colour or implausible pixel data.
    """
    stored = decode_stored(ds, path)
    if stored.ndim != 2:
        raise PixelDataError(f"{path}: expected one 2-D frame, decoded shape {stored.shape}")
    slope, intercept = rescale_of(ds)
    hu = to_hu(stored, slope=slope, intercept=intercept, padding=padding_mask(stored, ds), out_dtype=out_dtype)
    check_plausible_hu(hu, what=str(path))
    return hu


def read_slice_hu(path: str | Path) -> np.ndarray:
    """Decode one single-frame DICOM CT file to HU (rows, columns): for tests and quick looks.

    A single 2-D slice is not a volume: :func:`pvp_plan.io.load_ct` refuses it; this reads it.
    """
    path = Path(path)
    return slice_hu(read_dataset(path), path)


def frames_stored_and_padding(ds: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Stored values (frames, rows, columns) of a multi-frame dataset and its padding mask."""
    stored = decode_stored(ds, path)
    if stored.ndim == 2:
        stored = stored[None]
    return stored, padding_mask(stored, ds)
