"""Rewrite the golden images in tests/golden/ (the ONLY way they change).

    python tests/golden/regenerate.py            # every scene
    python tests/golden/regenerate.py cow_depth  # only the named ones

Look at every PNG it writes before committing: a golden image records what the renderer *should* show.
"""
import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("golden_scenes", Path(__file__).resolve().parent / "scenes.py")
scenes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenes)


def main(argv):
    from diffras.vis import save_image

    names = argv or scenes.ALL()
    unknown = [n for n in names if n not in scenes.SCENES]
    if unknown:
        raise SystemExit(f"unknown scene(s) {unknown}; known: {scenes.ALL()}")
    for name in names:
        missing = scenes.missing_input(name)
        if missing is not None:
            print(f"skip {name}: {missing} not found")
            continue
        path = save_image(scenes.golden_path(name), scenes.render(name))
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
