"""Say what is wrong with an image file that a pipeline could not load."""
import io
from typing import Optional

from mmengine import fileio
from PIL import Image, UnidentifiedImageError


class ImageFileError(OSError):
    """An image file that is missing or cannot be decoded; the message names it and the reason.

    It takes one message argument, so that a data-loader worker's copy of it reaches the main
    process (torch re-raises worker errors as ``type(err)(message)``) with the message intact.
    """


def describe_image_problem(path: str, backend_args: Optional[dict] = None) -> Optional[str]:
    """What is wrong with an image file: missing, empty, not an image or truncated.

    Args:
        path: the image (any mmengine file backend).
        backend_args: mmengine file backend arguments.

    Returns:
        str | None: the problem, or None when the file decodes completely with Pillow.
    """
    try:
        if not fileio.exists(path, backend_args=backend_args):
            return 'no such file'
        data = fileio.get(path, backend_args=backend_args)
    except OSError as err:
        return f'cannot be read ({err})'
    if len(data) == 0:
        return 'the file is empty (0 bytes)'
    kind = None
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = img.format
            img.load()
    except UnidentifiedImageError:
        return f'not an image ({len(data)} bytes that no image format recognises)'
    except (OSError, SyntaxError, ValueError) as err:
        reason = str(err)
        if 'truncated' in reason or 'broken data stream' in reason:
            return f'truncated {kind or "image"} file ({len(data)} bytes; {reason})'
        return f'corrupt {kind or "image"} file ({reason})'
    return None
