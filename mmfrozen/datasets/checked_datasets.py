"""MMDetection's COCO and LVIS datasets, with their annotation files and images checked.

``CheckedCocoDataset`` (COCO, and Pascal VOC converted to COCO format), ``CheckedLVISV1Dataset``
and ``CheckedLVISV05Dataset`` are MMDetection's ``CocoDataset``, ``LVISV1Dataset`` and
``LVISV05Dataset`` with three additions:

* the annotation file is checked when the dataset is built
  (:func:`~mmfrozen.datasets.annotation_check.check_annotations`): an error names the file, the
  annotation or image id and the field. Invalid annotations are an error by default;
  ``skip_invalid=True`` drops them and logs their count and the first few ids.
  ``require_annotations=False`` accepts image-info files without ground truth (COCO test-dev,
  predicted on with ``format_only``).
* annotation ids 0 and below, which such files may have (MMDetection's VOC converter numbers
  from 0) and which are valid COCO, load as any other ids, with one log line: the annotations
  are renumbered 1..N in file order, as the stratified metrics renumber them
  (:mod:`~mmfrozen.evaluation.annotation_ids`; MMDetection's ``CocoMetric`` / ``LVISMetric``
  would count annotation 0 as never matched). Ids that are missing, not integers or not
  unique are an error.
* an image the pipeline cannot load raises :class:`~mmfrozen.datasets.image_check.ImageFileError`
  naming the file and what is wrong with it (missing, empty, not an image, truncated); in a
  data-loader worker, the worker dies with that message.

The file is read once: the COCO / LVIS index is built from the checked data.
"""
import copy
import logging
from typing import Any, Callable, Dict, List

from mmdet.datasets import CocoDataset, LVISV05Dataset, LVISV1Dataset
from mmdet.datasets.api_wrappers import COCO
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from ..evaluation.annotation_ids import AnnotationIdError, renumber_annotation_ids
from .annotation_check import (FIRST_FEW, AnnotationFileError, check_annotations,
                               format_invalid, read_annotation_file, tiny_boxes)
from .image_check import ImageFileError, describe_image_problem


class CheckedDatasetMixin:
    """Annotation-file and image checks for an MMDetection COCO-style dataset."""

    LVIS_FORMAT = False
    ann_file: str
    backend_args: Any

    def _init_checks(self, skip_invalid: bool, require_annotations: bool) -> None:
        self.skip_invalid = bool(skip_invalid)
        self.require_annotations = bool(require_annotations)

    def checked_annotations(self) -> Dict[str, Any]:
        """Read and check ``self.ann_file``; drop invalid annotations if ``skip_invalid``.

        Returns:
            dict: the file's data, invalid annotations removed.

        Raises:
            AnnotationFileError: the file is unusable, or has invalid annotations and
                ``skip_invalid`` is false.
        """
        data = read_annotation_file(self.ann_file, self.backend_args)
        invalid = check_annotations(data, self.ann_file, lvis=self.LVIS_FORMAT,
                                    require_annotations=self.require_annotations)
        if invalid:
            if not self.skip_invalid:
                raise AnnotationFileError(
                    format_invalid(self.ann_file, invalid)
                    + f'\nFix the file, or set skip_invalid=True on {type(self).__name__} to '
                    'drop such annotations.')
            bad = {index for index, _ in invalid}
            data['annotations'] = [
                ann for index, ann in enumerate(data['annotations']) if index not in bad]
            print_log(format_invalid(self.ann_file, invalid) + '\nskip_invalid=True: skipped.',
                      logger='current', level=logging.WARNING)
            if self.require_annotations and not data['annotations']:
                raise AnnotationFileError(
                    f'Annotation file {self.ann_file}: every annotation is invalid.')
        self._renumber_annotation_ids(data)
        ignored = tiny_boxes(data)
        if ignored:
            print_log(
                f'Annotation file {self.ann_file}: {len(ignored)} box(es) narrower or lower '
                'than 1 pixel or with area <= 0, which MMDetection ignores in training; first '
                f'ids: {ignored[:FIRST_FEW]}', logger='current', level=logging.WARNING)
        return data

    def _renumber_annotation_ids(self, data: Dict[str, Any]) -> None:
        """Renumber annotation ids 0 and below as the stratified metrics do (one log line).

        Such a file is valid COCO and trains as any other; the ids matter to evaluation only,
        where pycocotools and lvis-api read id 0 as "not matched". The dataset's index holds
        the ids the stratified metrics see for the same file
        (:mod:`mmfrozen.evaluation.annotation_ids`).

        Raises:
            AnnotationFileError: ids missing, not integers or not unique.
        """
        try:
            line = renumber_annotation_ids(data.get('annotations') or [], self.ann_file,
                                           type(self).__name__)
        except AnnotationIdError as err:
            raise AnnotationFileError(str(err)) from err
        if line is not None:
            print_log(
                line + ' Evaluate it with CocoStratifiedMetric / LVISStratifiedMetric (which '
                'renumber the same way): MMDetection\'s CocoMetric / LVISMetric score such '
                'annotations as missed.', logger='current', level=logging.WARNING)

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; if it fails on a bad image file, say which file and why."""
        try:
            return super().prepare_data(idx)  # type: ignore[misc]
        except Exception as err:
            info = self.get_data_info(idx)  # type: ignore[attr-defined]
            path = info.get('img_path')
            problem = describe_image_problem(path, self.backend_args) if path else None
            if problem is None:
                err.add_note(f'(while preparing image {path}, image id {info.get("img_id")})')
                raise
            raise ImageFileError(
                f'Image {path} (image id {info.get("img_id")}, annotation file '
                f'{self.ann_file}): {problem}. The pipeline said: {type(err).__name__}: '
                f'{err}') from err


def _coco_api(data: Dict[str, Any]) -> COCO:
    """mmdet's COCO API, indexed from already-loaded data."""
    api = COCO()
    api.dataset = data
    api.createIndex()
    api.img_ann_map = api.imgToAnns
    api.cat_img_map = api.catToImgs
    return api


def _lvis_api(data: Dict[str, Any]):
    """lvis-api's LVIS, indexed from already-loaded data (as ``LVIS(path)`` does after reading)."""
    from lvis import LVIS
    api = LVIS.__new__(LVIS)
    api.logger = logging.getLogger('lvis.lvis')
    api.dataset = data
    api._create_index()
    return api


@DATASETS.register_module()
class CheckedCocoDataset(CheckedDatasetMixin, CocoDataset):
    """MMDetection's ``CocoDataset`` with the annotation file and images checked.

    Args:
        skip_invalid: drop invalid annotations (logged) instead of failing.
        require_annotations: the file must hold ground truth (false for image-info files).
        *args, **kwargs: ``CocoDataset``'s.
    """

    def __init__(self, *args: Any, skip_invalid: bool = False, require_annotations: bool = True,
                 **kwargs: Any) -> None:
        self._init_checks(skip_invalid, require_annotations)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the annotation file, then load it as ``CocoDataset`` does."""
        api = _coco_api(self.checked_annotations())
        self.COCOAPI: Callable[[str], COCO] = lambda _path: api
        try:
            return super().load_data_list()
        finally:
            del self.COCOAPI


class _CheckedLVISMixin(CheckedDatasetMixin):
    LVIS_FORMAT = True
    lvis: Any

    def _file_name(self, raw_img_info: Dict[str, Any]) -> str:
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """Check the annotation file, then load it as mmdet 3.3's LVIS datasets do."""
        self.lvis = _lvis_api(self.checked_annotations())
        self.cat_ids = self.lvis.get_cat_ids()
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(self.lvis.cat_img_map)
        data_list = []
        total_ann_ids = []
        for img_id in self.lvis.get_img_ids():
            raw_img_info = self.lvis.load_imgs([img_id])[0]
            raw_img_info['img_id'] = img_id
            raw_img_info['file_name'] = self._file_name(raw_img_info)
            ann_ids = self.lvis.get_ann_ids(img_ids=[img_id])
            total_ann_ids.extend(ann_ids)
            data_list.append(self.parse_data_info(dict(
                raw_ann_info=self.lvis.load_anns(ann_ids), raw_img_info=raw_img_info)))
        if self.ANN_ID_UNIQUE and len(set(total_ann_ids)) != len(total_ann_ids):
            raise AnnotationFileError(f'Annotation file {self.ann_file}: annotation ids are not '
                                      'unique.')
        del self.lvis
        return data_list


@DATASETS.register_module()
class CheckedLVISV1Dataset(_CheckedLVISMixin, LVISV1Dataset):
    """MMDetection's ``LVISV1Dataset`` with the annotation file (LVIS fields too) and images
    checked. Arguments as :class:`CheckedCocoDataset`."""

    def __init__(self, *args: Any, skip_invalid: bool = False, require_annotations: bool = True,
                 **kwargs: Any) -> None:
        self._init_checks(skip_invalid, require_annotations)
        super().__init__(*args, **kwargs)

    def _file_name(self, raw_img_info: Dict[str, Any]) -> str:
        # LVIS v1 names images by coco_url, e.g. http://images.cocodataset.org/train2017/x.jpg
        if 'coco_url' not in raw_img_info:
            raise AnnotationFileError(f'Annotation file {self.ann_file}: image id '
                                      f'{raw_img_info["id"]}: no "coco_url" field (LVIS v1 '
                                      'names its images by it).')
        return raw_img_info['coco_url'].replace('http://images.cocodataset.org/', '')


@DATASETS.register_module()
class CheckedLVISV05Dataset(_CheckedLVISMixin, LVISV05Dataset):
    """MMDetection's ``LVISV05Dataset`` with the annotation file and images checked."""

    def __init__(self, *args: Any, skip_invalid: bool = False, require_annotations: bool = True,
                 **kwargs: Any) -> None:
        self._init_checks(skip_invalid, require_annotations)
        super().__init__(*args, **kwargs)

    def _file_name(self, raw_img_info: Dict[str, Any]) -> str:
        name = raw_img_info['file_name']
        # COCO 2014 names (COCO_train2014_000000000000.jpg) become 2017 names
        return name[-16:] if name.startswith('COCO') else name


__all__ = ['CheckedCocoDataset', 'CheckedLVISV1Dataset', 'CheckedLVISV05Dataset',
           'ImageFileError']
