# Test stand-in for the OpenWrt buildroot's include/package.mk. BuildPackage gives targets:
#   info      prints the package metadata (from the Package/<name> block)
#   download  $(DL_DIR)/$(PKG_SOURCE) from PKG_SOURCE_URL, as scripts/download.pl does for a
#             file:// mirror: find the file there, copy it, check its sha256 against PKG_HASH
#             (unless "skip"), delete it on a mismatch
#   prepare   Build/Prepare (default: unpack the tarball into $(BUILD_DIR), as
#             Build/Prepare/Default does; its top directory must be $(PKG_NAME)-$(PKG_VERSION))
#   compile   Build/Compile (after prepare)    install  Package/<name>/install into $(DEST)
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)$(if $(PKG_VERSION),-$(PKG_VERSION))

define Build/Prepare
	mkdir -p $(PKG_BUILD_DIR)
	gzip -dc $(DL_DIR)/$(PKG_SOURCE) | tar -C $(PKG_BUILD_DIR)/.. -xf -
endef

define BuildPackage
$$(eval $$(Package/$(1)))
info:
	@echo 'PKG_NAME=$(PKG_NAME)'
	@echo 'PKG_VERSION=$(PKG_VERSION)'
	@echo 'PKG_RELEASE=$(PKG_RELEASE)'
	@echo 'PKG_SOURCE=$(PKG_SOURCE)'
	@echo 'PKG_SOURCE_URL=$(PKG_SOURCE_URL)'
	@echo 'PKG_HASH=$(PKG_HASH)'
	@echo 'SECTION=$$(SECTION)'
	@echo 'DEPENDS=$$(DEPENDS)'
	@echo 'CONFFILES=$$(strip $$(Package/$(1)/conffiles))'
download:
	@mkdir -p $(DL_DIR)
	@[ -f $(DL_DIR)/$(PKG_SOURCE) ] || for m in $(PKG_SOURCE_URL); do \
	  d=$$$${m#file://}; [ "$$$$d" != "$$$$m" ] && [ -d "$$$$d" ] || { echo "Wrong local cache directory -$$$$d-." >&2; continue; }; \
	  f=$$$$(find "$$$$d" -follow -name $(PKG_SOURCE) | head -n1); [ -n "$$$$f" ] || continue; \
	  cp "$$$$f" $(DL_DIR)/$(PKG_SOURCE).dl; \
	  h=$$$$(sha256sum $(DL_DIR)/$(PKG_SOURCE).dl | cut -d' ' -f1); \
	  if [ "$(PKG_HASH)" != skip ] && [ "$$$$h" != "$(PKG_HASH)" ]; then \
	    echo "Hash of the downloaded file does not match (file: $$$$h, requested: $(PKG_HASH)) - deleting download." >&2; \
	    rm -f $(DL_DIR)/$(PKG_SOURCE).dl; continue; fi; \
	  mv $(DL_DIR)/$(PKG_SOURCE).dl $(DL_DIR)/$(PKG_SOURCE); break; \
	done; [ -f $(DL_DIR)/$(PKG_SOURCE) ] || { echo "No more mirrors to try - giving up." >&2; exit 1; }
prepare: download
	$$(Build/Prepare)
compile: prepare
	$$(Build/Configure)
	$$(Build/Compile)
install:
	$$(call Package/$(1)/install,$$(DEST))
endef
