# Per-file ISA flags (FAISS "dynamic dispatch" style): only the kernel translation units named here are
# compiled for AVX2/AVX-512; everything else stays at the x86-64 baseline and picks a kernel at run time.
function(quiver_isa_sources)
  cmake_parse_arguments(ARG "" "" "AVX2;AVX512" ${ARGN})
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set_source_files_properties(${ARG_AVX2} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    set_source_files_properties(${ARG_AVX512} PROPERTIES
      COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx2;-mfma;-mf16c")
  endif()
endfunction()
