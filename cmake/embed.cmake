# The embeddable C library (docs/embedding.md), included by the top-level CMakeLists.txt after
# hbn_core is defined:
#   hbn_engine::hbn         shared libhbn.so: only the C API (hbn.h) is exported
#   hbn_engine::hbn_static  static libhbn.a: the API plus the whole core, self-contained
# both with the public headers hbn/hbn.h (C99) and hbn/hbn.hpp (header-only C++ RAII layer), the
# hbn_benchmark_model tool, and the C API tests. A consumer does
#   find_package(hbn_engine REQUIRED)
#   target_link_libraries(app PRIVATE hbn_engine::hbn)    # or hbn_engine::hbn_static
# (the static library needs the consumer to enable CXX: it carries the C++ runtime dependency).

# A Python wheel build (scikit-build-core sets SKBUILD) builds and installs only the extension.
if(SKBUILD)
  set(_hbn_embed_default OFF)
else()
  set(_hbn_embed_default ON)
endif()
option(HBN_BUILD_EMBED "Build the C API libraries, hbn_benchmark_model and the C API tests" ${_hbn_embed_default})
option(HBN_INSTALL "Install the C library, headers, tool and CMake package" ${_hbn_embed_default})
set(HBN_VERSION 0.1.0)  # keep equal to pyproject.toml

# Every core symbol stays inside the library that links the core: libhbn.so exports the C API
# only, and the Python module exports its init function only.
set_target_properties(hbn_core PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

if(NOT HBN_BUILD_EMBED)
  return()
endif()

enable_language(C)
include(GNUInstallDirs)

set(HBN_PUBLIC_INCLUDE ${PROJECT_SOURCE_DIR}/csrc/include)

# The API objects, compiled once for both libraries.
add_library(hbn_api_objects OBJECT ${PROJECT_SOURCE_DIR}/csrc/api/hbn_c.cc)
target_include_directories(hbn_api_objects PRIVATE ${HBN_PUBLIC_INCLUDE})
target_link_libraries(hbn_api_objects PRIVATE hbn_core)
target_compile_definitions(hbn_api_objects PRIVATE HBN_VERSION_STRING="${HBN_VERSION}")
target_compile_options(hbn_api_objects PRIVATE -O2 -Wall -Wextra)
set_target_properties(hbn_api_objects PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)

function(hbn_public_interface target)
  target_include_directories(${target} INTERFACE
    $<BUILD_INTERFACE:${HBN_PUBLIC_INCLUDE}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} INTERFACE Threads::Threads)
  set_target_properties(${target} PROPERTIES OUTPUT_NAME hbn EXPORT_NAME ${target})
endfunction()

add_library(hbn SHARED $<TARGET_OBJECTS:hbn_api_objects>)
target_link_libraries(hbn PRIVATE hbn_core)
hbn_public_interface(hbn)
set_target_properties(hbn PROPERTIES VERSION ${HBN_VERSION} SOVERSION 0 LINKER_LANGUAGE CXX)
if(NOT APPLE)
  # Only hbn_* is exported (the version script also hides std:: template instances), and
  # nothing is left unresolved - except in sanitizer builds, where clang leaves the sanitizer
  # runtime's symbols to the executable that loads the library.
  target_link_options(hbn PRIVATE -Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/hbn.map)
  if(NOT HBN_SANITIZE)
    target_link_options(hbn PRIVATE -Wl,--no-undefined)
  endif()
  set_target_properties(hbn PROPERTIES LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/hbn.map)
endif()

# Self-contained archive: the API objects and every core object.
add_library(hbn_static STATIC $<TARGET_OBJECTS:hbn_api_objects> $<TARGET_OBJECTS:hbn_core>)
hbn_public_interface(hbn_static)
set_target_properties(hbn_static PROPERTIES LINKER_LANGUAGE CXX)

add_executable(hbn_benchmark_model ${PROJECT_SOURCE_DIR}/csrc/tools/benchmark_model.cc)
target_link_libraries(hbn_benchmark_model PRIVATE hbn_static)
target_compile_options(hbn_benchmark_model PRIVATE -O2 -Wall -Wextra)

if(HBN_BUILD_TESTS)
  enable_testing()
  set(_hbn_data ${PROJECT_SOURCE_DIR}/csrc/tests/data)
  add_executable(test_capi_c ${PROJECT_SOURCE_DIR}/csrc/tests/test_capi_c.c)
  set_target_properties(test_capi_c PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(test_capi_c PRIVATE -Wall -Wextra -pedantic)
  target_link_libraries(test_capi_c PRIVATE hbn m)
  add_test(NAME test_capi_c COMMAND test_capi_c ${_hbn_data})
  add_executable(test_capi_cpp ${PROJECT_SOURCE_DIR}/csrc/tests/test_capi_cpp.cc)
  target_link_libraries(test_capi_cpp PRIVATE hbn_static)
  target_compile_options(test_capi_cpp PRIVATE -O2 -Wall -Wextra)
  add_test(NAME test_capi_cpp COMMAND test_capi_cpp ${_hbn_data})
  # The tool end to end: runs the test model, checks its output against the Python engine's.
  add_test(NAME test_capi_tool COMMAND hbn_benchmark_model --model ${_hbn_data}/tiny.hbn
           --input ${_hbn_data}/tiny_input.raw --batch 2 --runs 3 --warmup 1 --profile
           --compare ${_hbn_data}/tiny_ref.raw)
  # uint8 pixels into a model exported with input_norm (hbn_model_run_u8).
  add_test(NAME test_capi_tool_u8 COMMAND hbn_benchmark_model --model ${_hbn_data}/tiny_pixels.hbn
           --u8 --nhwc --batch 2 --runs 3 --warmup 1)
  # The same model in format version 2 (weights used in place), with the memory report.
  add_test(NAME test_capi_tool_v2 COMMAND hbn_benchmark_model --model ${_hbn_data}/tiny_v2.hbn
           --input ${_hbn_data}/tiny_input.raw --batch 2 --runs 3 --warmup 1 --report-memory
           --load-twice --compare ${_hbn_data}/tiny_ref.raw)
endif()

if(HBN_INSTALL)  # (only reached with HBN_BUILD_EMBED)
  include(CMakePackageConfigHelpers)
  install(TARGETS hbn hbn_static EXPORT hbn_engineTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(TARGETS hbn_benchmark_model RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${HBN_PUBLIC_INCLUDE}/hbn/hbn.h ${HBN_PUBLIC_INCLUDE}/hbn/hbn.hpp
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hbn)
  set(_hbn_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/hbn_engine)
  install(EXPORT hbn_engineTargets NAMESPACE hbn_engine:: DESTINATION ${_hbn_cmake_dir})
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/hbn_engineConfig.cmake.in
    ${PROJECT_BINARY_DIR}/hbn_engineConfig.cmake INSTALL_DESTINATION ${_hbn_cmake_dir})
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/hbn_engineConfigVersion.cmake
    VERSION ${HBN_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/hbn_engineConfig.cmake
          ${PROJECT_BINARY_DIR}/hbn_engineConfigVersion.cmake DESTINATION ${_hbn_cmake_dir})
endif()
