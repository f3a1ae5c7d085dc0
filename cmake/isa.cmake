# Every CPU kernel source is compiled three times, once per ISA level, into its own
# object library with its own flags; csrc/core/cpu_features.cpp picks one at import.
# The sources put their code in namespace dlcore::cpu::<isa> (DLCORE_ISA), so the
# three copies never merge at link time. No -march=native: what users install must
# run on any x86-64.
#
#   generic  x86-64 baseline (SSE2): runs everywhere, the reference
#   avx2     Haswell and later: AVX2 + FMA (+ F16C for later half-precision kernels)
#   avx512   Skylake-SP and later: AVX-512 F/BW/DQ/VL; -mprefer-vector-width=512 so
#            the compiler's auto-vectorisation really uses 512-bit registers
set(DLCORE_ISA_FLAGS_generic "")
set(DLCORE_ISA_FLAGS_avx2 -mavx2 -mfma -mf16c)
set(DLCORE_ISA_FLAGS_avx512 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c
    -mprefer-vector-width=512)

#
# A file whose name ends in _avx2.cpp or _avx512.cpp (hand-written intrinsics, e.g. the GEMM
# micro-kernels in csrc/cpu/gemm/) is compiled only into that ISA's library, with its flags;
# every other CPU source goes into all three.
file(GLOB DLCORE_CPU_SOURCES CONFIGURE_DEPENDS csrc/cpu/*.cpp csrc/cpu/ref/*.cpp csrc/cpu/gemm/*.cpp csrc/cpu/rnn/*.cpp
     csrc/cpu/conv/*.cpp)
set(DLCORE_CPU_SOURCES_all ${DLCORE_CPU_SOURCES})
list(FILTER DLCORE_CPU_SOURCES_all EXCLUDE REGEX "_(avx2|avx512)\\.cpp$")
set(DLCORE_ISA_LIBRARIES "")
foreach(isa generic avx2 avx512)
  set(isa_sources ${DLCORE_CPU_SOURCES})
  list(FILTER isa_sources INCLUDE REGEX "_${isa}\\.cpp$")
  add_library(dlcore_cpu_${isa} OBJECT ${DLCORE_CPU_SOURCES_all} ${isa_sources})
  target_include_directories(dlcore_cpu_${isa} PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
  target_compile_definitions(dlcore_cpu_${isa} PRIVATE DLCORE_ISA=${isa})
  target_compile_options(dlcore_cpu_${isa} PRIVATE -O3 -fno-math-errno -Wall -Wextra ${DLCORE_ISA_FLAGS_${isa}})
  target_link_libraries(dlcore_cpu_${isa} PRIVATE OpenMP::OpenMP_CXX)
  list(APPEND DLCORE_ISA_LIBRARIES dlcore_cpu_${isa})
endforeach()

# The optimiser steps round every operation once (no multiply-add contracted into an FMA), as
# NumPy and the CUDA kernels (csrc/cuda/optim.cu, __fmul_rn) do: a CPU step and a GPU step of the
# same values give the same bits. GCC's default (-ffp-contract=fast) had moved the GPU SGD's
# momentum buffer 2e-7 away from the CPU one (tests/cuda/test_cuda_optim.py, H100, 2026-11-27).
set_source_files_properties(${CMAKE_SOURCE_DIR}/csrc/cpu/ref/optim.cpp PROPERTIES COMPILE_OPTIONS -ffp-contract=off)

# After linking: fail the build if a wide-ISA object exports a weak function outside its
# namespace (see cmake/check_isa_symbols.py for why that would break the generic path).
function(dlcore_check_isa_symbols target)
  set(groups "")
  foreach(isa generic avx2 avx512)
    list(APPEND groups "${isa}=$<JOIN:$<TARGET_OBJECTS:dlcore_cpu_${isa}>,|>")
  endforeach()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${Python_EXECUTABLE} ${CMAKE_SOURCE_DIR}/cmake/check_isa_symbols.py ${CMAKE_NM} ${groups}
    COMMENT "Checking ISA isolation of the kernel objects" VERBATIM)
endfunction()
