/**
 * The fixed identities of the test disk that qemu/images.ts builds, so that its images are
 * reproducible; tests that imitate it over FakeKernel use the same values.
 */

/** The ESP's partition UUID on the test disk. */
export const ESP_PART_UUID = "6b1e7d2a-3c4f-4a5b-8c6d-7e8f9a0b1c2d";
/** The test disk's GPT disk GUID. */
export const DISK_GUID = "8c5b1f0e-2d3a-4b6c-9e7f-0a1b2c3d4e5f";
/** The verity superblock's UUID and salt, and the erofs UUID, of the test root. */
export const VERITY_UUID = "9d5e6f3a-1b2c-4d8e-9f01-23456789abcd";
export const VERITY_SALT = "5a17".repeat(16);
export const EROFS_UUID = "c0ffee00-1234-4567-89ab-cdef01234567";
