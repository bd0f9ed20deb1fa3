// Private to encode/: static embedding models (no transformer): model2vec and word vectors.
//
// model2vec: a folder with model.safetensors (tensor `embeddings` [rows, dim], F32/F16/I8, optional
// `mapping` [vocab] token -> row and `weights` [vocab] per-token scale, as model2vec's vocabulary
// quantisation writes them), tokenizer.json and config.json (`normalize`). A text is the mean of its
// tokens' (weighted) rows, unknown tokens dropped, first max_length tokens, then L2-normalised if set.
//
// Word vectors (GloVe): vocab.txt (line i = vector i, frequency order) + base.fvecs / vectors.fvecs /
// vectors.npy. A text is lower-cased, split into alphanumeric words; known words are averaged (or
// SIF-weighted, a / (a + p(w)) with p from Zipf's law on the vocabulary rank) and L2-normalised.
// Texts with no known word give the zero vector.
//
// Threading: texts are encoded in parallel over a pool of LoadOptions::threads workers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "quiver/encode/encoder.h"
#include "quiver/text/wordpiece.h"

namespace quiver::encode::detail {

class Model2VecEncoder final : public Encoder {
public:
    static Result<std::unique_ptr<Model2VecEncoder>> load(const std::string& dir, const LoadOptions& options);
    const EncoderInfo& info() const noexcept override { return info_; }
    Result<Embeddings> encode(std::span<const std::string_view> texts, const EncodeOptions& options) override;

private:
    Model2VecEncoder() = default;

    LoadOptions options_;
    EncoderInfo info_;
    text::HfTokenizer tokenizer_;
    std::vector<float> embeddings_;  // rows_ x dim_
    std::size_t rows_ = 0;
    std::size_t dim_ = 0;
    std::vector<std::uint32_t> mapping_;  // token id -> row (empty: identity)
    std::vector<float> weights_;          // token id -> scale (empty: 1)
    bool normalize_ = true;
};

class WordVectorEncoder final : public Encoder {
public:
    static Result<std::unique_ptr<WordVectorEncoder>> load(const std::string& dir, const LoadOptions& options);
    const EncoderInfo& info() const noexcept override { return info_; }
    Result<Embeddings> encode(std::span<const std::string_view> texts, const EncodeOptions& options) override;
    /// The words of `text` as this encoder looks them up.
    static std::vector<std::string> words(std::string_view text);

private:
    WordVectorEncoder() = default;

    LoadOptions options_;
    EncoderInfo info_;
    std::unordered_map<std::string, std::uint32_t> vocab_;
    Matrix<float> vectors_;
    std::vector<float> sif_weights_;  // by vocabulary row; empty = plain mean
};

}  // namespace quiver::encode::detail
