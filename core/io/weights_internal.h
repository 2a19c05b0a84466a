/*
 * Private to core/io: the per-file representation shared by the
 * safetensors reader, the PyTorch zip/pickle reader and weights.c.
 */
#ifndef VKF_IO_WEIGHTS_INTERNAL_H
#define VKF_IO_WEIGHTS_INTERNAL_H

#include "vkflow/weights.h"

/* Limits against hostile files (docs/weights.md). */
#define WT_MAX_HEADER (100u << 20)      /* safetensors JSON header bytes */
#define WT_MAX_TENSORS (1 << 22)        /* tensors in one file */
#define WT_MAX_ZIP_ENTRIES (1 << 22)
#define WT_MAX_PICKLE (256u << 20)      /* data.pkl bytes */
#define WT_MAX_INFLATE ((uint64_t)64 << 30) /* one deflated entry */

/* A storage of a PyTorch checkpoint: one zip entry. */
typedef struct wt_storage {
    char *key;                  /* persistent-id key: archive/data/<key> */
    vkf_wdtype dtype;
    uint64_t numel;             /* elements the pickle announced */
    const uint8_t *data;        /* NULL until loaded (deflated entries) */
    uint64_t size;              /* uncompressed bytes */
    const uint8_t *comp;        /* compressed bytes (method 8) */
    uint64_t comp_size;
    int method;                 /* 0 stored, 8 deflate */
    uint8_t *owned;             /* inflated copy */
} wt_storage;

typedef struct wt_tensor {
    vkf_weight_info info;       /* first member: public view */
    char *name;                 /* owns info.name */
    const uint8_t *data;        /* safetensors: bytes in the mapping */
    int storage;                /* pickle: index in file->st, else -1 */
    int64_t offset;             /* pickle: storage offset in elements */
    int64_t strides[VKF_WEIGHTS_MAX_DIMS];  /* pickle, in elements */
    bool contiguous;
    uint8_t *owned;             /* materialised bytes (strided / inflated) */
} wt_tensor;

typedef struct wt_file {
    char *path;                 /* for messages and vkf_weights_file_path */
    const uint8_t *base;        /* whole file (mapping or borrowed memory) */
    size_t size;
    bool mapped;
    wt_tensor *t;
    int count, cap;
    wt_storage *st;
    int nst, stcap;
    char **meta;                /* key0, value0, key1, value1 ... */
    int nmeta, metacap;
    const vkf_log *log;
} wt_file;

/* Logs "<path>: <message>" once at error level and returns code. */
int wt_fail(const wt_file *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

bool wt_utf8_valid(const char *s, size_t n);
/* Routes cJSON's allocations through vkf_malloc/vkf_free (process-wide;
 * call before every parse so a parse and its cJSON_Delete match). */
void wt_cjson_hooks(void);
/* Appends a tensor (zeroed, storage -1, contiguous) taking a copy of name. */
int wt_add_tensor(wt_file *f, const char *name, size_t name_len,
                  wt_tensor **out);
/* Appends a key/value metadata pair (both copied). */
int wt_add_meta(wt_file *f, const char *key, const char *value);
/* numel and nbytes from shape; VKF_EPARSE on overflow. */
int wt_finish_info(const wt_file *f, wt_tensor *t);

/* Readers: parse f->base/f->size, fill f->t / f->st / f->meta. */
int vkf_safetensors_parse(wt_file *f);
int vkf_pickle_parse(wt_file *f);
/* Loads a storage's bytes (inflating a deflated entry once). */
int vkf_pickle_storage_load(wt_file *f, wt_storage *s);

/* vkf_weights_open_memory with a forced reader (fuzzers, corpus replay). */
typedef enum wt_reader {
    WT_READER_AUTO = 0,
    WT_READER_SAFETENSORS,
    WT_READER_PICKLE,
} wt_reader;

int wt_open_memory_as(const void *data, size_t size, const char *name, wt_reader reader,
                      vkf_weights **out, const vkf_log *log);

/* Zip directory (zip.c). */
typedef struct wt_zip_entry {
    const char *name;           /* points into the mapping: not terminated */
    size_t name_len;
    int method;
    uint64_t comp_size, size, local_offset;
    uint32_t crc;
    const uint8_t *data;        /* start of the (compressed) bytes */
} wt_zip_entry;

typedef struct wt_zip {
    wt_zip_entry *e;            /* sorted by name */
    int count;
} wt_zip;

bool vkf_zip_is_zip(const uint8_t *p, size_t size);
int vkf_zip_open(const wt_file *f, wt_zip *z);
void vkf_zip_close(wt_zip *z);
/* Binary search by exact name; NULL if absent. */
const wt_zip_entry *vkf_zip_find(const wt_zip *z, const char *name);
/* Bytes of an entry: borrowed for stored, *owned (vkf_free) for deflated. */
int vkf_zip_read(const wt_file *f, const wt_zip_entry *e, uint64_t max,
                 const uint8_t **data, uint8_t **owned);
int vkf_zip_inflate(const wt_file *f, const char *what, const uint8_t *comp,
                    uint64_t comp_size, uint64_t size, uint8_t **out);

#endif
