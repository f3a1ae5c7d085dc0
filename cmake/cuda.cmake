# Optional CUDA: DLCORE_CUDA=AUTO builds csrc/cuda/ when nvcc is found, ON requires it,
# OFF skips it. The runtime is linked statically, so `import dlcore` works on a machine
# without a driver (cuda.is_available() is then False).
set(DLCORE_WITH_CUDA OFF)
if(NOT DLCORE_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(DLCORE_WITH_CUDA ON)
  elseif(DLCORE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "DLCORE_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

if(DLCORE_WITH_CUDA)
  # sm_80 (A100) and sm_90 (H100/H200): the data-centre GPUs this library targets.
  # Override with -DCMAKE_CUDA_ARCHITECTURES=... for other cards.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  file(GLOB DLCORE_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/cuda/*.cu)
  # Hopper's wgmma kernel (gemm_wgmma.cu) needs the architecture-specific target sm_90a, which
  # runs on compute capability 9.0 alone: it is its own library, built when the list names 90.
  set(DLCORE_WGMMA_SOURCE ${CMAKE_SOURCE_DIR}/csrc/cuda/gemm_wgmma.cu)
  list(REMOVE_ITEM DLCORE_CUDA_SOURCES ${DLCORE_WGMMA_SOURCE})
  add_library(dlcore_cuda STATIC ${DLCORE_CUDA_SOURCES})
  target_include_directories(dlcore_cuda PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
  set_target_properties(dlcore_cuda PROPERTIES CUDA_STANDARD 17 POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(dlcore_cuda PUBLIC CUDA::cudart_static)
  if("90" IN_LIST CMAKE_CUDA_ARCHITECTURES OR "90a" IN_LIST CMAKE_CUDA_ARCHITECTURES)
    add_library(dlcore_cuda_sm90a STATIC ${DLCORE_WGMMA_SOURCE})
    target_include_directories(dlcore_cuda_sm90a PRIVATE ${CMAKE_SOURCE_DIR}/csrc)
    set_target_properties(dlcore_cuda_sm90a PROPERTIES CUDA_STANDARD 17 POSITION_INDEPENDENT_CODE ON
                                                       CUDA_ARCHITECTURES 90a-real)
    target_link_libraries(dlcore_cuda_sm90a PUBLIC CUDA::cudart_static)
    target_link_libraries(dlcore_cuda PUBLIC dlcore_cuda_sm90a)
    target_compile_definitions(dlcore_cuda PUBLIC DLCORE_WITH_WGMMA=1)
  endif()
  message(STATUS "dlcore: CUDA kernels ON (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "dlcore: CUDA kernels OFF")
endif()
