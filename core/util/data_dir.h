/* core/util/data_dir.h — where the staged public datasets live.
 *
 * One rule for every command and recipe: an explicit --data DIR (or a
 * recipe's `data:`), else $MONET_PROBE_DATA, else ../shared/data from the
 * current directory, else ../shared/data next to the repository the binary was
 * built in (build/monet-probe -> ../../shared/data), so the default does not
 * depend on the working directory. When none exists the error says how to set
 * it.
 */
#ifndef MP_DATA_DIR_H
#define MP_DATA_DIR_H

#include <stddef.h>

#include "core/util/error.h"

/* Resolve the data folder into buf. given may be NULL. @return 0, or
 * MP_EINPUT naming the places looked at and how to set the folder. */
int mp_data_dir(const char *given, char *buf, size_t cap, mp_error *err);

#endif
