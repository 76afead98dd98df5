# Run by `cmake --install` (see fuse/CMakeLists.txt): links LUNFS_MOUNT_HELPER_DIR/mount.lunfs
# (/sbin, where mount(8) looks) to the mount.lunfs just installed under the prefix.
# CMAKE_INSTALL_PREFIX here is the install's own (`cmake --install --prefix` overrides it);
# LUNFS_CONFIGURED_PREFIX is the one the build was configured with.
if(NOT LUNFS_MOUNT_HELPER_DIR)
  return()
endif()
if(IS_ABSOLUTE "${LUNFS_SBINDIR}")
  set(installed "${LUNFS_SBINDIR}/mount.lunfs")
else()
  set(installed "${CMAKE_INSTALL_PREFIX}/${LUNFS_SBINDIR}/mount.lunfs")
endif()
# Prefix / or /usr on a merged-/usr system: mount.lunfs is already where mount(8) looks, and a
# link would replace it by a link to itself.
get_filename_component(installed_dir "${installed}" DIRECTORY)
file(REAL_PATH "${installed_dir}" installed_dir)
file(REAL_PATH "${LUNFS_MOUNT_HELPER_DIR}" helper_dir)
if(installed_dir STREQUAL helper_dir)
  return()
endif()
# An install relocated with --prefix and no DESTDIR writes nothing outside its prefix: it is
# a test or a private copy, and /sbin is the system's. The install to the configured prefix
# makes the link, and a staged one (DESTDIR) makes it inside the staging directory.
if("$ENV{DESTDIR}" STREQUAL "" AND NOT CMAKE_INSTALL_PREFIX STREQUAL LUNFS_CONFIGURED_PREFIX)
  message(STATUS "Not linking ${LUNFS_MOUNT_HELPER_DIR}/mount.lunfs to ${installed} "
                 "(--prefix differs from the configured prefix): mount -t lunfs needs that link")
  return()
endif()
set(link "$ENV{DESTDIR}${LUNFS_MOUNT_HELPER_DIR}/mount.lunfs")
message(STATUS "Installing: ${link} -> ${installed}")
file(MAKE_DIRECTORY "$ENV{DESTDIR}${LUNFS_MOUNT_HELPER_DIR}")
file(CREATE_LINK "${installed}" "${link}" SYMBOLIC)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${link}")
