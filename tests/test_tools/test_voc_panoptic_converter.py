# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
"""tools/dataset_converters/voc_panoptic.py on a hand-made sample in both
layouts (VOC2012 palette PNGs, SBD .mat files written with scipy): exact
JSON segments and id PNGs, the train_aug recipe, VOC winning over SBD, the
void band, a naive reference on random maps, bad input."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from mmpanoptic_plus.structures import read_panoptic_ids

REPO = Path(__file__).resolve().parents[2]
V = 255  # VOC's void band

# Image A (VOC train, also in SBD train with another annotation: VOC's
# wins): car instance 1 (class 7), persons 2 and 3 (class 15); the void
# band, and a person pixel of no instance at (3, 7), are VOID.
SEMANTIC_A = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 15, 15, V, 0, 7, 7, 0],
    [0, 15, 15, V, 0, 7, 7, 0],
    [0, V, V, V, 0, V, 7, 15],
    [0, 0, 0, 0, 15, 15, 0, 0],
    [0, 0, 0, 0, 15, 15, 0, 0],
])
INSTANCE_A = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 2, 2, V, 0, 1, 1, 0],
    [0, 2, 2, V, 0, 1, 1, 0],
    [0, V, V, V, 0, V, 1, 0],
    [0, 0, 0, 0, 3, 3, 0, 0],
    [0, 0, 0, 0, 3, 3, 0, 0],
])
EXPECTED_IDS_A = np.array([
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 3, 3, 0, 1, 2, 2, 1],
    [1, 3, 3, 0, 1, 2, 2, 1],
    [1, 0, 0, 0, 1, 0, 2, 0],
    [1, 1, 1, 1, 4, 4, 1, 1],
    [1, 1, 1, 1, 4, 4, 1, 1],
])
EXPECTED_SEGMENTS_A = [
    dict(id=1, category_id=0, area=28, bbox=[0, 0, 8, 6], iscrowd=0),
    dict(id=2, category_id=7, area=5, bbox=[5, 1, 2, 3], iscrowd=0),  # car
    dict(id=3, category_id=15, area=4, bbox=[1, 1, 2, 2], iscrowd=0),
    dict(id=4, category_id=15, area=4, bbox=[4, 4, 2, 2], iscrowd=0),
]
# SBD's annotation of image A: one bus over the lower rows, no void
SBD_SEMANTIC_A = np.where(np.arange(6)[:, None] >= 2, 6, 0) * np.ones(
    (1, 8), dtype=np.int64)
SBD_INSTANCE_A = (SBD_SEMANTIC_A > 0).astype(np.int64)

# Image B (VOC val, also in SBD val: not in train_aug): a tv monitor with
# its void band
SEMANTIC_B = np.array([
    [0, 0, 0, 0, 0],
    [0, 20, 20, V, 0],
    [0, 20, 20, V, 0],
    [0, V, V, V, 0],
])
INSTANCE_B = np.where(SEMANTIC_B == 20, 1, SEMANTIC_B)
EXPECTED_IDS_B = np.array([
    [1, 1, 1, 1, 1],
    [1, 2, 2, 0, 1],
    [1, 2, 2, 0, 1],
    [1, 0, 0, 0, 1],
])
EXPECTED_SEGMENTS_B = [
    dict(id=1, category_id=0, area=11, bbox=[0, 0, 5, 4], iscrowd=0),
    dict(id=2, category_id=20, area=4, bbox=[1, 1, 2, 2], iscrowd=0),
]

# Image C (SBD train only): dogs 1 and 3 (class 12), bird 2 (class 3)
SEMANTIC_C = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 12, 12, 0, 0, 0],
    [0, 12, 12, 0, 3, 3],
    [0, 0, 0, 0, 3, 3],
    [12, 12, 0, 0, 0, 0],
])
INSTANCE_C = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 0, 0, 0],
    [0, 1, 1, 0, 2, 2],
    [0, 0, 0, 0, 2, 2],
    [3, 3, 0, 0, 0, 0],
])
CATEGORIES_C = [12, 3, 12]
EXPECTED_IDS_C = np.array([
    [1, 1, 1, 1, 1, 1],
    [1, 2, 2, 1, 1, 1],
    [1, 2, 2, 1, 3, 3],
    [1, 1, 1, 1, 3, 3],
    [4, 4, 1, 1, 1, 1],
])
EXPECTED_SEGMENTS_C = [
    dict(id=1, category_id=0, area=20, bbox=[0, 0, 6, 5], iscrowd=0),
    dict(id=2, category_id=12, area=4, bbox=[1, 1, 2, 2], iscrowd=0),
    dict(id=3, category_id=3, area=4, bbox=[4, 2, 2, 2], iscrowd=0),
    dict(id=4, category_id=12, area=2, bbox=[0, 4, 2, 1], iscrowd=0),
]

# Image D (SBD val only): a bottle (class 5) at the border
SEMANTIC_D = np.array([[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 0, 0]])
INSTANCE_D = (SEMANTIC_D > 0).astype(np.int64)
CATEGORIES_D = [5]
EXPECTED_IDS_D = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 1, 1]])
EXPECTED_SEGMENTS_D = [
    dict(id=1, category_id=0, area=8, bbox=[0, 0, 4, 3], iscrowd=0),
    dict(id=2, category_id=5, area=4, bbox=[2, 0, 2, 2], iscrowd=0),
]

# Image E (VOC train only, not in SBD): an aeroplane pixel, a void pixel
SEMANTIC_E = np.array([[0, 0, 0], [0, V, 0], [0, 0, 1]])
INSTANCE_E = SEMANTIC_E.copy()
EXPECTED_IDS_E = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 2]])
EXPECTED_SEGMENTS_E = [
    dict(id=1, category_id=0, area=7, bbox=[0, 0, 3, 3], iscrowd=0),
    dict(id=2, category_id=1, area=1, bbox=[2, 2, 1, 1], iscrowd=0),
]

VOC_SAMPLE = {
    '2007_000001': (SEMANTIC_A, INSTANCE_A),
    '2007_000002': (SEMANTIC_B, INSTANCE_B),
    '2007_000005': (SEMANTIC_E, INSTANCE_E),
}
SBD_SAMPLE = {
    '2007_000001': (SBD_SEMANTIC_A, SBD_INSTANCE_A, [6]),
    '2007_000002': (SEMANTIC_B * (SEMANTIC_B != V), INSTANCE_B *
                    (INSTANCE_B != V), [20]),
    '2008_000003': (SEMANTIC_C, INSTANCE_C, CATEGORIES_C),
    '2008_000004': (SEMANTIC_D, INSTANCE_D, CATEGORIES_D),
}
VOC_LISTS = {'train': ['2007_000001', '2007_000005'], 'val': ['2007_000002']}
SBD_LISTS = {
    'train': ['2007_000001', '2008_000003'],
    'val': ['2007_000002', '2008_000004']
}
EXPECTED = {  # stem -> (id map, segments) of the converted output
    '2007_000001': (EXPECTED_IDS_A, EXPECTED_SEGMENTS_A),
    '2007_000002': (EXPECTED_IDS_B, EXPECTED_SEGMENTS_B),
    '2008_000003': (EXPECTED_IDS_C, EXPECTED_SEGMENTS_C),
    '2008_000004': (EXPECTED_IDS_D, EXPECTED_SEGMENTS_D),
    '2007_000005': (EXPECTED_IDS_E, EXPECTED_SEGMENTS_E),
}


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location(
        'voc_panoptic_converter',
        REPO / 'tools' / 'dataset_converters' / 'voc_panoptic.py')
    module = importlib.util.module_from_spec(spec)
    # registered so that worker processes can unpickle its functions
    sys.modules['voc_panoptic_converter'] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules['voc_panoptic_converter']


def voc_palette() -> list:
    """VOC's 256-entry PNG palette (flat RGB): the classic bit-interleaved
    colour map, 255 being (224, 224, 192)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        value = index
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette += [r, g, b]
    return palette


def write_palette_png(path: Path, indices: np.ndarray) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode='P')
    image.putpalette(voc_palette())
    image.save(path)


def write_sample(root: Path) -> tuple:
    """Write VOC2012/ and sbd/ (benchmark_RELEASE/dataset) under root."""
    voc, sbd = root / 'VOC2012', root / 'sbd'
    for folder in ('JPEGImages', 'SegmentationClass', 'SegmentationObject',
                   'ImageSets/Segmentation'):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    for folder in ('cls', 'inst'):
        (sbd / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = {}
    for stem, (semantic, instance) in VOC_SAMPLE.items():
        write_palette_png(voc / 'SegmentationClass' / f'{stem}.png', semantic)
        write_palette_png(voc / 'SegmentationObject' / f'{stem}.png',
                          instance)
        shapes[stem] = semantic.shape
    for stem, (semantic, instance, categories) in SBD_SAMPLE.items():
        savemat(sbd / 'cls' / f'{stem}.mat', {
            'GTcls': {
                'Segmentation': semantic.astype(np.uint8),
                'Boundaries': np.zeros((20, 1), dtype=object),
                'CategoriesPresent': np.unique(semantic[semantic > 0])
            }
        })
        savemat(sbd / 'inst' / f'{stem}.mat', {
            'GTinst': {
                'Segmentation': instance.astype(np.uint8),
                'Boundaries': np.zeros((len(categories), 1), dtype=object),
                'Categories': np.array(categories, np.uint8)[:, None]
            }
        })
        shapes.setdefault(stem, semantic.shape)
    for stem, shape in shapes.items():
        Image.fromarray(rng.integers(0, 255, shape + (3, ), np.uint8)).save(
            voc / 'JPEGImages' / f'{stem}.jpg')
    for name, stems in VOC_LISTS.items():
        (voc / 'ImageSets' / 'Segmentation' / f'{name}.txt').write_text(
            '\n'.join(stems) + '\n')
    for name, stems in SBD_LISTS.items():
        (sbd / f'{name}.txt').write_text('\n'.join(stems) + '\n')
    return voc, sbd


@pytest.fixture(scope='module')
def converted(converter, tmp_path_factory):
    voc, sbd = write_sample(tmp_path_factory.mktemp('voc'))
    outputs = converter.convert_voc_panoptic(str(voc), str(sbd))
    return voc, sbd, outputs


def test_exact_json_and_pngs(converted):
    voc, _, outputs = converted
    assert outputs == {
        'train_aug': str(voc / 'voc_panoptic_train_aug.json'),
        'val': str(voc / 'voc_panoptic_val.json')
    }
    # train_aug: SBD train + val + VOC train - VOC val, sorted
    expected_stems = {
        'train_aug':
        ['2007_000001', '2007_000005', '2008_000003', '2008_000004'],
        'val': ['2007_000002'],
    }
    for split, stems in expected_stems.items():
        raw = json.loads((voc / f'voc_panoptic_{split}.json').read_text())
        assert raw['images'] == [
            dict(id=stem, file_name=f'{stem}.jpg',
                 height=EXPECTED[stem][0].shape[0],
                 width=EXPECTED[stem][0].shape[1]) for stem in stems
        ]
        assert raw['annotations'] == [
            dict(image_id=stem, file_name=f'{stem}.png',
                 segments_info=EXPECTED[stem][1]) for stem in stems
        ]
        for stem in stems:
            ids = read_panoptic_ids(voc / f'voc_panoptic_{split}' /
                                    f'{stem}.png')
            np.testing.assert_array_equal(ids, EXPECTED[stem][0])


def test_voc_wins_where_both_annotate(converted, converter):
    """Image A is in VOC train and SBD train: VOC's masks (persons, car,
    void band) are written, not SBD's bus."""
    voc, sbd, _ = converted
    raw = json.loads((voc / 'voc_panoptic_train_aug.json').read_text())
    segments = raw['annotations'][0]['segments_info']
    categories = {segment['category_id'] for segment in segments}
    assert categories == {0, 7, 15}  # not the bus (6) of SBD
    sources = converter.split_sources(
        'train_aug', VOC_LISTS['train'], VOC_LISTS['val'],
        SBD_LISTS['train'] + SBD_LISTS['val'])
    assert sources == [('2007_000001', 'voc'), ('2007_000005', 'voc'),
                       ('2008_000003', 'sbd'), ('2008_000004', 'sbd')]
    # SBD's own annotation of A converts to the bus
    semantic, instance, categories = converter.read_annotation(
        '2007_000001', 'sbd', str(voc), str(sbd))
    np.testing.assert_array_equal(semantic, SBD_SEMANTIC_A)
    _, segments = converter.voc_to_panoptic(semantic, instance,
                                            instance_categories=categories)
    assert [s['category_id'] for s in segments] == [0, 6]


def test_categories_things_first(converted):
    voc, _, _ = converted
    categories = json.loads(
        (voc / 'voc_panoptic_val.json').read_text())['categories']
    assert [c['id'] for c in categories] == list(range(1, 21)) + [0]
    assert [c['isthing'] for c in categories] == [1] * 20 + [0]
    assert [c['name'] for c in categories[:3]] == [
        'aeroplane', 'bicycle', 'bird'
    ]
    assert (categories[14]['name'], categories[19]['name']) == ('person',
                                                                'tvmonitor')
    assert categories[20]['name'] == 'background'
    # the VOC PNG palette colours
    palette = np.array(voc_palette()).reshape(256, 3)
    for category in categories:
        assert category['color'] == palette[category['id']].tolist()


def test_reads_palette_indices_not_colours(converter, tmp_path):
    path = tmp_path / 'a.png'
    write_palette_png(path, SEMANTIC_A)
    np.testing.assert_array_equal(
        converter.read_voc_png(str(path), 'x'), SEMANTIC_A)
    # a colour rendering of the same annotation is refused
    Image.open(path).convert('RGB').save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match='mode-RGB .*palette PNGs'):
        converter.read_voc_png(str(tmp_path / 'rgb.png'), 'x')


def naive_panoptic(semantic, instance):
    """Plain-loop reference: background (class 0, no instance, not void)
    first, then instances 1..254 in order, each pixel of an instance that
    is not void; ids 1..N, empty segments dropped."""
    height, width = semantic.shape
    layers = [[] for _ in range(256)]  # 0: background, k: instance k
    category = {}
    for y in range(height):
        for x in range(width):
            s, i = int(semantic[y, x]), int(instance[y, x])
            if s == 255 or i == 255:
                continue
            if i > 0:
                layers[i].append((y, x))
                category[i] = s
            elif s == 0:
                layers[0].append((y, x))
    id_map = np.zeros((height, width), dtype=np.int64)
    segments = []
    for k, pixels in enumerate(layers):
        if not pixels:
            continue
        ys, xs = np.array(pixels).T
        segment_id = len(segments) + 1
        id_map[ys, xs] = segment_id
        segments.append(
            dict(
                id=segment_id,
                category_id=category.get(k, 0),
                area=len(pixels),
                bbox=[
                    int(xs.min()),
                    int(ys.min()),
                    int(xs.max() - xs.min() + 1),
                    int(ys.max() - ys.min() + 1)
                ],
                iscrowd=0))
    return id_map, segments


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_naive_reference(converter, seed):
    rng = np.random.default_rng(seed)
    height, width = 23, 31
    semantic = np.zeros((height, width), dtype=np.int64)
    instance = np.zeros((height, width), dtype=np.int64)
    for instance_id in rng.choice(np.arange(1, 255), 7, replace=False):
        y, x = rng.integers(0, height - 3), rng.integers(0, width - 3)
        h, w = rng.integers(1, 9, 2)
        instance[y:y + h, x:x + w] = instance_id
        semantic[y:y + h, x:x + w] = rng.integers(1, 21)
    # thing-class pixels of no instance, and a void band, as in VOC
    stray = rng.random((height, width)) < 0.05
    semantic[stray & (instance == 0)] = rng.integers(1, 21)
    band = rng.random((height, width)) < 0.1
    semantic[band], instance[band] = 255, 255
    id_map, segments = converter.voc_to_panoptic(semantic, instance)
    expected_map, expected_segments = naive_panoptic(semantic, instance)
    np.testing.assert_array_equal(id_map, expected_map)
    assert segments == expected_segments
    assert len(segments) > 4


def test_one_sided_void_and_all_void(converter):
    """255 in either map alone voids the pixel; an all-void image has no
    segment."""
    semantic = np.array([[0, V, 3], [0, 3, 3]])
    instance = np.array([[V, 0, 1], [0, V, 1]])
    id_map, segments = converter.voc_to_panoptic(semantic, instance)
    np.testing.assert_array_equal(id_map, [[0, 0, 2], [1, 0, 2]])
    assert [(s['category_id'], s['area']) for s in segments] == [(0, 1),
                                                                  (3, 2)]
    id_map, segments = converter.voc_to_panoptic(
        np.full((2, 2), V), np.full((2, 2), V))
    assert segments == [] and not id_map.any()


def test_parallel_equals_serial(converter, converted, tmp_path):
    voc, sbd, _ = converted
    out = tmp_path / 'parallel'
    converter.convert_voc_panoptic(
        str(voc), str(sbd), str(out), splits=['train_aug'], nproc=2)
    assert json.loads((out / 'voc_panoptic_train_aug.json').read_text()) == \
        json.loads((voc / 'voc_panoptic_train_aug.json').read_text())
    for png in (voc / 'voc_panoptic_train_aug').iterdir():
        assert (out / 'voc_panoptic_train_aug' / png.name).read_bytes() == \
            png.read_bytes()


def test_split_lists_are_inputs(converter, converted, tmp_path):
    """--voc-lists / --sbd-lists replace the default image sets; 'train'
    needs no SBD."""
    voc, sbd, _ = converted
    only_c = tmp_path / 'only_c.txt'
    only_c.write_text('2008_000003\n\n')
    voc_train = tmp_path / 'voc_train.txt'
    voc_train.write_text('2007_000005\n')
    out = tmp_path / 'lists'
    assert converter.main([
        str(voc), '--sbd-root', str(sbd), '--out-dir', str(out),
        '--splits', 'train_aug', '--sbd-lists', str(only_c), '--voc-lists',
        str(voc_train), str(voc / 'ImageSets/Segmentation/val.txt')
    ]) == 0
    raw = json.loads((out / 'voc_panoptic_train_aug.json').read_text())
    assert [i['id'] for i in raw['images']] == ['2007_000005', '2008_000003']
    outputs = converter.convert_voc_panoptic(
        str(voc), out_dir=str(out), splits=['train'])
    raw = json.loads(Path(outputs['train']).read_text())
    assert [i['id'] for i in raw['images']] == VOC_LISTS['train']


def test_missing_inputs(converter, converted, tmp_path, capsys):
    voc, sbd, _ = converted
    with pytest.raises(FileNotFoundError, match='VOC2012 root'):
        converter.convert_voc_panoptic(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='train_aug needs SBD'):
        converter.convert_voc_panoptic(str(voc), splits=['train_aug'])
    with pytest.raises(FileNotFoundError, match='SBD list .*missing.txt'):
        converter.convert_voc_panoptic(
            str(voc), str(sbd), splits=['train_aug'],
            sbd_lists=[str(tmp_path / 'missing.txt')])
    with pytest.raises(ValueError, match='splits must be among'):
        converter.convert_voc_panoptic(str(voc), splits=['test'])
    # a VOC2012 copy without SegmentationObject
    bare, _ = write_sample(tmp_path / 'bare')
    for png in (bare / 'SegmentationObject').iterdir():
        png.unlink()
    (bare / 'SegmentationObject').rmdir()
    with pytest.raises(FileNotFoundError,
                       match='VOC object annotation folder .*'
                       'SegmentationObject'):
        converter.convert_voc_panoptic(str(bare), splits=['val'])
    # the command line says it and fails
    assert converter.main([str(bare), '--splits', 'val']) == 1
    assert 'SegmentationObject' in capsys.readouterr().err
    # an SBD image without its inst .mat
    (tmp_path / 'bare' / 'sbd' / 'inst' / '2008_000004.mat').unlink()
    with pytest.raises(FileNotFoundError,
                       match='SBD instance annotation .*2008_000004.mat'):
        converter.convert_voc_panoptic(
            str(voc), str(tmp_path / 'bare' / 'sbd'), str(tmp_path / 'o'),
            splits=['train_aug'])


def test_bad_values(converter, tmp_path):
    with pytest.raises(ValueError, match=r'class values \[21\] are not VOC'):
        converter.voc_to_panoptic(np.array([[0, 21]]), np.zeros((1, 2)))
    # an instance over two classes, or over background
    with pytest.raises(ValueError, match=r'instances \[1\] have pixels of '
                       'several classes'):
        converter.voc_to_panoptic(np.array([[3, 4]]), np.array([[1, 1]]))
    with pytest.raises(ValueError,
                       match=r'instances \[2\] lie on background'):
        converter.voc_to_panoptic(np.array([[3, 0]]), np.array([[1, 2]]))
    # SBD's GTinst.Categories must agree with the class map
    with pytest.raises(ValueError, match=r'instances \[3\] are classes '
                       r'\[5\] in GTinst.Categories but \[12\]'):
        converter.voc_to_panoptic(SEMANTIC_C, INSTANCE_C,
                                  instance_categories=[12, 3, 5])
    with pytest.raises(ValueError, match=r'instances \[3\] have no entry'):
        converter.voc_to_panoptic(SEMANTIC_C, INSTANCE_C,
                                  instance_categories=[12, 3])
    with pytest.raises(ValueError, match='same size'):
        converter.voc_to_panoptic(SEMANTIC_A, INSTANCE_A[:, :4])
    # a .mat that is not SBD's
    savemat(tmp_path / 'x.mat', {'other': np.zeros((2, 2))})
    with pytest.raises(ValueError, match='no "GTcls.Segmentation"'):
        converter.read_sbd_mat(str(tmp_path / 'x.mat'), 'GTcls', 'x')
    # annotation and image sizes differ
    voc, sbd = write_sample(tmp_path / 'sizes')
    Image.new('RGB', (9, 9)).save(voc / 'JPEGImages' / '2007_000002.jpg')
    with pytest.raises(ValueError, match=r'2007_000002: VOC annotation size '
                       r'\(4, 5\) differs from the image size \(9, 9\)'):
        converter.convert_voc_panoptic(str(voc), splits=['val'])
