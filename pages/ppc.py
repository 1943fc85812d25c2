import streamlit as st

st.title("ppc")
st.info("This page is being built.")
