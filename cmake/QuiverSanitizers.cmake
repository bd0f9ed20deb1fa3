# QUIVER_SANITIZE="address;undefined" or "thread": applied to every target in the tree.
if(QUIVER_SANITIZE)
  set(_flags "")
  foreach(s IN LISTS QUIVER_SANITIZE)
    list(APPEND _flags "-fsanitize=${s}")
  endforeach()
  add_compile_options(${_flags} -fno-omit-frame-pointer)
  add_link_options(${_flags})
endif()
