// Peak AVX-512 FMA rate of this host's cores, one thread per core, all threads at once: does a
// second busy core slow the first (shared physical core, host throttling)? Each thread runs 8
// independent FMA chains (enough to fill two FMA ports at latency 4) held in registers.
//   gcc -O2 -mavx512f -mfma bench/trainer/fma_peak.c -o /tmp/fma_peak -lpthread
//   /tmp/fma_peak 1; /tmp/fma_peak 2
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#define DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + i * 1e-7f);
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);

static void* work(void* arg) {
  (void)arg;
  DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5) DECL(6) DECL(7)
  const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  const long iters = 200000000;
  double t = now();
  for (long k = 0; k < iters; ++k) {
    STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
  }
  t = now() - t;
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  printf("thread: %.3f s, %.2f G zmm FMA/s (checksum %g)\n", t, iters * 8.0 / t / 1e9, _mm512_reduce_add_ps(s));
  return NULL;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  if (n < 1 || n > 64) return 2;
  pthread_t th[64];
  for (int i = 0; i < n; ++i) pthread_create(&th[i], NULL, work, NULL);
  for (int i = 0; i < n; ++i) pthread_join(th[i], NULL);
  return 0;
}
