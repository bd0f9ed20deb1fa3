/// @file repair.h
/// @brief Explicit salvage of a collection that refuses to open with kDataLoss (`quiver repair`).
///
/// Recovery never drops acknowledged data silently: damage other than a torn tail makes
/// `Collection::open` fail. `repair_collection` is the explicit, reported alternative. It keeps
/// every intact record: the live documents of every segment whose files verify, and every log
/// record with a valid checksum (found by scanning past damage), replayed in sequence order over
/// the segments. What it cannot keep goes to a side directory `<dir>.repair-<unix seconds>/` beside
/// the collection: damaged segment directories and delete files (moved there), the byte ranges of
/// the logs it skipped
/// (`<log>.dropped`, with `REPORT.txt` listing file, offset and length), and the original logs. The
/// collection is then rewritten as one segment and a new MANIFEST, so it opens again.
///
/// What it cannot do: a damaged MANIFEST holds the schema and the list of segments, so it is not
/// repaired (kDataLoss). A damaged delete file loses which of its segment's documents were deleted:
/// they are kept (and counted in `deletes_lost_documents`), as the choice that loses nothing
/// written. Requires exclusive access (no server on the collection).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quiver/core/result.h"

namespace quiver::engine {

struct RepairReport {
    std::uint64_t segments_kept = 0;
    std::uint64_t segments_dropped = 0;  ///< segments whose files failed verification
    std::uint64_t delete_files_damaged = 0;
    std::uint64_t deletes_lost_documents =
        0;  ///< documents kept although their deletion state was lost
    std::uint64_t log_records_replayed = 0;  ///< intact records after the checkpoint
    std::uint64_t log_records_undecodable =
        0;                                ///< intact checksums but payloads that do not decode
    std::uint64_t log_bytes_dropped = 0;  ///< bytes of logs that held no intact record
    std::uint64_t sequence_gaps = 0;      ///< missing runs of sequence numbers among the records
    std::uint64_t documents = 0;          ///< live documents in the repaired collection
    std::string side_dir;                 ///< where dropped material went ("" when nothing was)
    std::vector<std::string> actions;     ///< one line per thing done or dropped
};

/// Salvages the collection in `dir` (see the file comment).
[[nodiscard]] Result<RepairReport> repair_collection(const std::string& dir);

}  // namespace quiver::engine
