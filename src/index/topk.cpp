// topk.h is header-only; this unit keeps the module's source list uniform.
#include "index/topk.h"
