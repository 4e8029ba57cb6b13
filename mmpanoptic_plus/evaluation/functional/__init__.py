# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
from .context_error import (NEIGHBOUR_OFFSETS, class_integral_image,
                            context_distributions,
                            context_distributions_from_table, context_error,
                            context_errors, neighbour_regions, symmetric_kl,
                            symmetric_kl_batch)
from .instance_retrieval import SIMILARITIES, nearest_neighbours
from .panoptic_io import ids_to_rgb, read_panoptic_ids, write_panoptic_ids
from .panoptic_maps import segment_bboxes, split_panoptic_map
from .panoptic_quality import (FIRST_SEGMENT_INDEX, OTHER_INDEX, VOID_INDEX,
                               PanopticSegments, PQStat, average_pq,
                               index_dtype, index_segment_ids,
                               intersection_table, pq_average,
                               pq_stat_from_table, pq_stat_single_image,
                               run_intersection_table)
from .pq_compute import (check_prediction, match_annotations, parse_categories,
                         parse_segments_info, pq_compute, pq_compute_stat,
                         pq_stat_single_file)

__all__ = [
    'read_panoptic_ids', 'write_panoptic_ids', 'ids_to_rgb', 'PQStat',
    'PanopticSegments', 'index_dtype', 'index_segment_ids',
    'intersection_table', 'run_intersection_table', 'pq_stat_from_table',
    'pq_stat_single_image',
    'pq_average', 'average_pq', 'parse_categories', 'parse_segments_info',
    'check_prediction', 'match_annotations', 'pq_stat_single_file',
    'pq_compute_stat', 'pq_compute', 'OTHER_INDEX', 'VOID_INDEX',
    'FIRST_SEGMENT_INDEX', 'split_panoptic_map', 'segment_bboxes',
    'NEIGHBOUR_OFFSETS', 'class_integral_image', 'neighbour_regions',
    'context_distributions', 'context_distributions_from_table',
    'symmetric_kl', 'symmetric_kl_batch', 'context_error', 'context_errors',
    'SIMILARITIES', 'nearest_neighbours'
]
