# Copyright (c) mmpanoptic_plus contributors. All rights reserved.
