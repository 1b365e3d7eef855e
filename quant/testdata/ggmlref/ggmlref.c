// ggmlref drives the conversion routines of a real ggml build (libggml-base)
// so that package quant can be checked against it bit for bit. It is not part
// of the Go build; see README.md beside it.
//
//	ggmlref LIB quantize TYPE    < float32s  > bytes
//	ggmlref LIB dequantize TYPE  < bytes     > float32s
//	ggmlref LIB sweep16                       (hashes of f32->f16 and f32->bf16
//	                                           over all 2^32 inputs)
//
// TYPE is one of f16, bf16, q4_0, q8_0, q6_K. Data are little-endian and
// whole rows (a multiple of the block size).
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*from_float_fn)(const float *, void *, int64_t);
typedef void (*to_float_fn)(const void *, float *, int64_t);

static void *lib;

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "ggmlref: %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static unsigned char *read_all(size_t *n) {
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    *n = len;
    return buf;
}

struct fmt {
    const char *name;
    int block, size;
    const char *from, *to;
};

static const struct fmt fmts[] = {
    {"f16", 1, 2, "ggml_fp32_to_fp16_row", "ggml_fp16_to_fp32_row"},
    {"bf16", 1, 2, "ggml_fp32_to_bf16_row_ref", "ggml_bf16_to_fp32_row"},
    {"q4_0", 32, 18, "quantize_row_q4_0_ref", "dequantize_row_q4_0"},
    {"q8_0", 32, 34, "quantize_row_q8_0_ref", "dequantize_row_q8_0"},
    {"q6_K", 256, 210, "quantize_row_q6_K_ref", "dequantize_row_q6_K"},
};

static const struct fmt *find(const char *name) {
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (!strcmp(fmts[i].name, name)) return &fmts[i];
    fprintf(stderr, "ggmlref: unknown type %s\n", name);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ggmlref LIB quantize|dequantize TYPE | ggmlref LIB sweep16\n");
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "ggmlref: %s\n", dlerror());
        return 2;
    }
    // Some ggml builds read f16 values through a table that ggml_init fills.
    struct init_params {
        size_t mem_size;
        void *mem_buffer;
        _Bool no_alloc;
    } ip = {1024, NULL, 1};
    void *(*ggml_init)(struct init_params) = (void *(*)(struct init_params))sym("ggml_init");
    void (*ggml_free)(void *) = (void (*)(void *))sym("ggml_free");
    ggml_free(ggml_init(ip));

    if (!strcmp(argv[2], "sweep16")) {
        uint16_t (*f16)(float) = (uint16_t (*)(float))sym("ggml_fp32_to_fp16");
        uint16_t (*bf16)(float) = (uint16_t (*)(float))sym("ggml_fp32_to_bf16");
        // For each chunk c of 2^24 consecutive inputs u (c = the top byte of
        // u), an FNV-1a-style hash over one 32-bit word per input,
        // f16(u) | bf16(u) << 16.
        const uint64_t basis = 14695981039346656037ull, prime = 1099511628211ull;
        for (uint32_t c = 0; c < 256; c++) {
            uint64_t h = basis;
            for (uint32_t j = 0; j < (1u << 24); j++) {
                uint32_t u = c << 24 | j;
                float f;
                memcpy(&f, &u, 4);
                h = (h ^ ((uint64_t)f16(f) | (uint64_t)bf16(f) << 16)) * prime;
            }
            printf("sweep %02x %016llx\n", c, (unsigned long long)h);
        }
        return 0;
    }
    if (argc < 4) return 2;
    const struct fmt *t = find(argv[3]);
    size_t n;
    unsigned char *in = read_all(&n);
    if (!strcmp(argv[2], "quantize")) {
        int64_t k = n / 4;
        if (n % 4 || k % t->block) {
            fprintf(stderr, "ggmlref: bad input length %zu\n", n);
            return 2;
        }
        size_t outn = (size_t)(k / t->block) * t->size;
        unsigned char *out = calloc(outn ? outn : 1, 1);
        ((from_float_fn)sym(t->from))((const float *)in, out, k);
        fwrite(out, 1, outn, stdout);
    } else if (!strcmp(argv[2], "dequantize")) {
        if (n % t->size) {
            fprintf(stderr, "ggmlref: bad input length %zu\n", n);
            return 2;
        }
        int64_t k = (int64_t)(n / t->size) * t->block;
        float *out = calloc(k ? k : 1, 4);
        ((to_float_fn)sym(t->to))(in, out, k);
        fwrite(out, 4, k, stdout);
    } else {
        fprintf(stderr, "ggmlref: unknown mode %s\n", argv[2]);
        return 2;
    }
    return 0;
}
