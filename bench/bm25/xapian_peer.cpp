// Xapian adapter for `quiver bench bm25`. Xapian reports errors by throwing; this file is the only
// place that catches them, and turns them into an error string.
#include <chrono>
#include <filesystem>

#include "bm25/lexical_engine.h"
#include "common/report.h"

#if __has_include(<xapian.h>)
#include <xapian.h>
#define QUIVER_HAVE_XAPIAN 1
#endif

namespace quiver::bench::bm25 {

#ifdef QUIVER_HAVE_XAPIAN
namespace {

std::size_t directory_bytes(const std::string& dir) {
    std::size_t total = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
        if (e.is_regular_file(ec)) total += static_cast<std::size_t>(e.file_size(ec));
    }
    return total;
}

// Lucene's English stop set, the same words quiver's analyzer removes.
const char* const kStopWords[] = {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if",
                                  "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that",
                                  "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"};

}  // namespace

bool run_xapian(const eval::Dataset& ds, const LexicalSettings& settings, LexicalMeasurement& out, std::string& error) {
    out.engine = "xapian " + std::string(Xapian::version_string());
    out.analysis = "TermGenerator/QueryParser, Stem(porter), STEM_ALL, stopper (Lucene 33), STOP_ALL";
    const std::string dir = settings.work_dir + "/xapian";
    try {
        Xapian::SimpleStopper stopper(std::begin(kStopWords), std::end(kStopWords));
        Xapian::Stem stem("porter");
        {
            Stopwatch sw;
            Xapian::WritableDatabase db(dir, Xapian::DB_CREATE_OR_OVERWRITE);
            Xapian::TermGenerator gen;
            gen.set_stemmer(stem);
            gen.set_stemming_strategy(Xapian::TermGenerator::STEM_ALL);
            gen.set_stopper(&stopper);
            gen.set_stopper_strategy(Xapian::TermGenerator::STOP_ALL);
            for (const eval::Document& d : ds.documents) {
                Xapian::Document doc;
                gen.set_document(doc);
                gen.index_text(d.title);
                gen.increase_termpos();
                gen.index_text(d.text);
                db.add_document(doc);  // docid i + 1 maps to ds.documents[i]
            }
            db.commit();
            db.close();
            out.index_seconds = sw.seconds();
        }
        out.index_bytes = directory_bytes(dir);

        Xapian::Database db(dir);
        Xapian::Enquire enquire(db);
        enquire.set_weighting_scheme(Xapian::BM25Weight(settings.k1, 0.0, 1.0, settings.b, 0.5));
        enquire.set_docid_order(Xapian::Enquire::DONT_CARE);
        Xapian::QueryParser parser;
        parser.set_database(db);
        parser.set_stemmer(stem);
        parser.set_stemming_strategy(Xapian::QueryParser::STEM_ALL);
        parser.set_stopper(&stopper);
        parser.set_default_op(Xapian::Query::OP_OR);
        const auto k = static_cast<Xapian::doccount>(settings.k);
        time_queries(ds, settings, out, [&](std::size_t i, std::vector<std::string>& ids, std::vector<double>& scores) {
            enquire.set_query(parser.parse_query(ds.queries[i].text, 0));
            Xapian::MSet mset = enquire.get_mset(0, k);
            ids.reserve(mset.size());
            for (auto it = mset.begin(); it != mset.end(); ++it) {
                ids.push_back(ds.documents[*it - 1].id);
                scores.push_back(it.get_weight());
            }
        });
    } catch (const Xapian::Error& e) {
        error = "xapian: " + e.get_description();
        return false;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return true;
}

#else

bool run_xapian(const eval::Dataset&, const LexicalSettings&, LexicalMeasurement&, std::string& error) {
    error = "xapian: this quiver-bench was built without Xapian (install libxapian-dev and reconfigure)";
    return false;
}

#endif

}  // namespace quiver::bench::bm25
