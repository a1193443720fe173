"""Finding the studies of a batch: a folder tree or a manifest CSV.

Rules (also in ``docs/batch.md``)
---------------------------------
Folder tree (walked in sorted order; hidden names and the batch's own output folder are ignored):

* every NIfTI / NRRD / MetaImage file (``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) is one study;
* every other file is probed as DICOM with a header-only read (pydicom ``stop_before_pixels``); the files of
  one folder that share a SeriesInstanceUID form one series, and each CT image series is one study;
* series that are not CT images are recorded as ``skipped`` with the reason (modality MR, localizer,
  secondary capture, single slice); a folder whose DICOM files have no readable header is recorded as ``failed``;
* other files (text, spreadsheets, images' ``.raw`` data files) are ignored.

Manifest CSV: a header row with ``study_id,path`` and optionally ``series_uid``, ``anchor`` and ``segmentation`` (a
label map to use instead of automatic segmentation); relative paths are read from the manifest's folder; study IDs must be unique and made of letters, digits, ``.``, ``_`` and ``-``.

Study IDs of a folder tree are ``s`` + 12 hex digits of HMAC-SHA256(salt, relative path [+ "#" + series UID]):
stable for a given salt (kept in the output folder's ``batch_config.json``), not reversible without it.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import hmac
import logging
import os
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pvp_plan.errors import InputError

logger = logging.getLogger(__name__)

#: File name endings read as one image study each.
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Data files that belong to a header file (MetaImage / NRRD detached data); never studies themselves.
DATA_SUFFIXES = (".raw", ".zraw", ".raw.gz")
#: Header tags read from each DICOM file (nothing else is parsed; no pixel data).
_DICOM_TAGS = [
    "Modality", "SeriesInstanceUID", "StudyInstanceUID", "ImageType", "SOPClassUID", "NumberOfFrames",
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "AccessionNumber", "StudyID", "InstitutionName", "ReferringPhysicianName",
]
#: Header values that identify a patient or a study; collected only to remove them from messages.
_IDENTIFYING_TAGS = _DICOM_TAGS[1:3] + _DICOM_TAGS[6:]
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
#: Folder names too common to identify anyone (not redacted from messages, to keep them readable).
_COMMON_NAMES = frozenset({"data", "dicom", "image", "images", "input", "inputs", "nifti", "series", "study",
                           "studies", "scan", "scans", "export", "exports", "cohort", "spine", "thorax", "abdomen",
                           "batch", "files", "volume", "volumes", "home", "tmp", "mnt", "work", "shared"})
_STUDY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ManifestError(InputError):
    """The manifest CSV cannot be used (missing columns, duplicate or unsafe study IDs)."""


@dataclass(frozen=True)
class Study:
    """One entry of a batch.

    Attributes
    ----------
    study_id : str
        Identifier used in every output (folder name under ``studies/``, first column of the tables).
    path : str
        Absolute input path (file or DICOM folder). Kept in memory only; written out only with
        ``--keep-identifiers``.
    series_uid : str or None
        DICOM SeriesInstanceUID to load from ``path`` (None: the loader chooses / not DICOM).
    anchor : str or None
        Per-study level anchor from the manifest (passed to the plan options).
    segmentation : str or None
        Per-study label map from the manifest (absolute path), used instead of automatic segmentation.
    status : str or None
        None for a study to compute; ``"skipped"`` or ``"failed"`` when discovery already decided.
    message : str
        Why it was skipped or failed.
    identifiers : tuple of str
        Strings that identify the patient or the input (names, IDs, dates, UIDs, path parts); they are
        removed from every message written unless identifiers are kept.
    """

    study_id: str
    path: str
    series_uid: str | None = None
    anchor: str | None = None
    segmentation: str | None = None
    status: str | None = None
    message: str = ""
    identifiers: tuple[str, ...] = field(default=(), repr=False)


def study_id_for(key: str, *, salt: str) -> str:
    """Salted, non-reversible study ID of a key (relative path [+ "#" + series UID])."""
    digest = hmac.new(salt.encode(), key.encode(), hashlib.sha256).hexdigest()
    return "s" + digest[:12]


def discover(input_path: str | Path, *, salt: str, exclude: tuple[Path, ...] = (),
             exclude_globs: tuple[str, ...] = ()) -> list[Study]:
    """Studies of a folder tree, a single image/DICOM input, or a manifest CSV (by the input's type).

    ``exclude`` are folders not to enter (the batch's own output); ``exclude_globs`` shell patterns matched
    against each file's and folder's path relative to the input folder and against its name
    (e.g. ``"*seg*"``, ``"reference"``).
    """
    path = Path(input_path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; give a folder of studies or a manifest CSV")
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_manifest(path)
    if path.is_file():
        return discover_tree(path.parent, salt=salt, only=path)
    return discover_tree(path, salt=salt, exclude=exclude, exclude_globs=exclude_globs)


def read_manifest(path: str | Path) -> list[Study]:
    """Studies listed in a manifest CSV ``study_id,path[,series_uid][,anchor]`` (paths relative to its folder)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        missing = {"study_id", "path"} - set(fields)
        if missing:
            raise ManifestError(f"{path.name}: the header row must name study_id and path "
                                f"(optional: series_uid, anchor, segmentation); found {', '.join(fields) or 'nothing'}")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    studies: list[Study] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        sid = row.get("study_id", "")
        if not _STUDY_ID_RE.match(sid):
            raise ManifestError(f"{path.name} line {line}: study_id {sid!r} is not usable as a folder name; use "
                                "letters, digits, '.', '_' and '-' (up to 100 characters)")
        if sid in seen:
            raise ManifestError(f"{path.name} line {line}: study_id {sid!r} repeats line {seen[sid]}; IDs must be unique")
        seen[sid] = line
        if not row.get("path"):
            raise ManifestError(f"{path.name} line {line}: study {sid!r} has no path")
        target = _manifest_path(row["path"], path)
        seg = _manifest_path(row["segmentation"], path) if row.get("segmentation") else None
        ids = _path_identifiers(target, path.parent) + (_path_identifiers(seg, path.parent) if seg else ())
        studies.append(Study(
            study_id=sid, path=str(target), series_uid=row.get("series_uid") or None,
            anchor=row.get("anchor") or None, segmentation=None if seg is None else str(seg),
            identifiers=tuple(sorted(set(ids))),
        ))
    return sorted(studies, key=lambda s: s.study_id)


def _manifest_path(text: str, manifest: Path) -> Path:
    """A manifest path: absolute as written, or relative to the manifest's folder."""
    target = Path(text).expanduser()
    return (target if target.is_absolute() else manifest.parent / target).absolute()


def discover_tree(root: Path, *, salt: str, exclude: tuple[Path, ...] = (), exclude_globs: tuple[str, ...] = (),
                  only: Path | None = None) -> list[Study]:
    """Studies below ``root`` by the rules in the module docstring, sorted by study ID."""
    root = root.absolute()

    def excluded_by_glob(path: Path) -> bool:
        rel = path.relative_to(root).as_posix()
        return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(path.name, g) for g in exclude_globs)

    excluded = {p.absolute() for p in exclude}
    studies: list[Study] = []
    walk = [(str(root), [], [only.name])] if only is not None else os.walk(root)
    for dirpath, dirnames, filenames in walk:
        folder = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (folder / d).absolute() not in excluded
                             and not excluded_by_glob(folder / d))
        candidates = []
        for name in sorted(filenames):
            file = folder / name
            if name.startswith(".") or (only is not None and file != only.absolute()) or excluded_by_glob(file):
                continue
            lower = name.lower()
            if lower.endswith(IMAGE_SUFFIXES):
                key = file.relative_to(root).as_posix()
                studies.append(Study(study_id_for(key, salt=salt), str(file), identifiers=_path_identifiers(file, root)))
            elif not lower.endswith(DATA_SUFFIXES):
                candidates.append(file)
        studies.extend(_dicom_studies(folder, candidates, root=root, salt=salt))
    ids = Counter(s.study_id for s in studies)
    clash = [k for k, n in ids.items() if n > 1]
    if clash:  # 48-bit IDs: practically impossible, but never merge two studies silently
        raise InputError(f"study ID collision ({clash[0]}); rerun with another --salt")
    return sorted(studies, key=lambda s: s.study_id)


def _dicom_studies(folder: Path, files: list[Path], *, root: Path, salt: str) -> list[Study]:
    """One study per CT image series among ``files`` (all in ``folder``); non-CT series as skipped."""
    if not files:
        return []
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, list] = defaultdict(list)
    unreadable: list[str] = []
    for file in files:
        if file.name.upper() == "DICOMDIR":
            continue  # an index of the files, which are found by the walk anyway
        try:
            with warnings.catch_warnings():  # odd values in headers are the loader's business
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=_DICOM_TAGS)
        except InvalidDicomError:
            continue  # not DICOM (text, spreadsheets...): ignored
        except Exception as exc:  # truncated or corrupt header
            if _has_dicom_magic(file):
                unreadable.append(f"{type(exc).__name__}: {exc}")
            continue
        if str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")) == _DICOMDIR_SOP_CLASS:
            continue
        if not ds.get("SeriesInstanceUID") and not ds.get("Modality"):
            if _has_dicom_magic(file):  # pydicom reads what is there: a cut header has neither
                unreadable.append("header without SeriesInstanceUID or Modality (truncated file?)")
            continue
        series[str(ds.get("SeriesInstanceUID", "") or "")].append(ds)
    rel = folder.relative_to(root).as_posix()
    path_ids = _path_identifiers(folder, root)
    studies = []
    if unreadable:
        logger.warning("%d DICOM file(s) with unreadable headers in a folder of the batch", len(unreadable))
        if not series:
            studies.append(Study(
                study_id_for(rel + "#unreadable", salt=salt), str(folder), status="failed",
                message=f"{len(unreadable)} DICOM file(s), none with a readable header (first error: {unreadable[0]})",
                identifiers=path_ids,
            ))
    for uid in sorted(series):
        headers = series[uid]
        ids = set(path_ids)
        for ds in headers:
            ids.update(_header_identifiers(ds))
        reason = _skip_reason(headers)
        studies.append(Study(
            study_id_for(f"{rel}#{uid}", salt=salt), str(folder), series_uid=uid or None,
            status="skipped" if reason else None, message=reason or "", identifiers=tuple(sorted(ids)),
        ))
    return studies


def _skip_reason(headers: list) -> str | None:
    """Why a DICOM series is not a CT volume study, or None when it is one."""
    modalities = Counter(str(ds.get("Modality", "") or "unknown") for ds in headers)
    modality = modalities.most_common(1)[0][0]
    if modality != "CT":
        return f"modality {modality} (not CT)"
    if any(str(ds.get("SOPClassUID", "")).startswith(_SECONDARY_CAPTURE_PREFIX) for ds in headers):
        return "secondary capture (screenshots or dose report), not CT images"
    if all("LOCALIZER" in [str(v).upper() for v in (ds.get("ImageType") or [])] for ds in headers):
        return "CT localizer (scout), not a volume"
    frames = max(int(ds.get("NumberOfFrames", 1) or 1) for ds in headers)
    if len(headers) < 2 and frames < 2:
        return "a single CT slice, not a volume"
    return None


def _has_dicom_magic(file: Path) -> bool:
    try:
        with open(file, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _header_identifiers(ds) -> set[str]:
    """Identifying header values (and the parts of person names) of one DICOM header."""
    out: set[str] = set()
    for tag in _IDENTIFYING_TAGS:
        value = ds.get(tag)
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
        for v in values:
            text = str(v).strip()
            if len(text) >= 3:
                out.add(text)
                out.update(p.strip() for p in re.split(r"[\^= ]", text) if len(p.strip()) >= 3)
    return out


def _path_identifiers(path: Path, root: Path) -> tuple[str, ...]:
    """The input path as written and resolved, its path relative to the root, and the names in between."""
    path = Path(path)
    out = {str(path), str(path.absolute()), str(root.absolute()), str(root)}
    try:
        out.add(str(path.resolve()))
        rel = path.absolute().relative_to(root.absolute())
    except (OSError, ValueError):
        rel = Path(path.name)
    out.add(rel.as_posix())
    for part in rel.parts:
        stem = part.split(".", 1)[0]
        for name in (part, stem):
            if len(name) >= 3 and name.lower() not in _COMMON_NAMES:
                out.add(name)
    out.discard(".")
    out.discard("")
    return tuple(sorted(out))
